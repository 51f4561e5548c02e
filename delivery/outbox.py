"""The outbox ledger: exactly-once delivery per (campaign, period, customer).

A ledger row is written *before* the transport is called and moves
``pending → sending → sent | failed | unknown``.  A row left in ``sending`` by a crash is
``unknown``: it is reconciled against the transport (was it delivered?), never blindly
re-sent.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import duckdb

DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    campaign      VARCHAR   NOT NULL,
    period        DATE      NOT NULL,
    customer_id   VARCHAR   NOT NULL,
    email         VARCHAR   NOT NULL,
    status        VARCHAR   NOT NULL,   -- pending | sending | sent | failed | unknown
    attempts      INTEGER   NOT NULL DEFAULT 0,
    transport     VARCHAR,
    message_id    VARCHAR,              -- our Message-ID header
    transport_id  VARCHAR,              -- the transport's id (file path, SMTP queue id, SES MessageId)
    last_error    VARCHAR,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (campaign, period, customer_id)
)
"""


def ensure_outbox(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


@dataclass
class FileTransport:
    """Writes each message as ``<root>/<campaign>/<period>/<customer_id>.eml`` (atomic rename)."""

    root: Path
    name: str = "file"

    def path_for(self, campaign: str, period: str, customer_id: str) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in customer_id)
        return self.root / campaign / period / f"{safe}.eml"

    def send(self, msg: EmailMessage, campaign: str, period: str, customer_id: str) -> str:
        target = self.path_for(campaign, period, customer_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(msg.as_bytes())
        os.replace(tmp, target)
        return str(target)

    def was_delivered(self, campaign: str, period: str, customer_id: str) -> bool:
        return self.path_for(campaign, period, customer_id).exists()
