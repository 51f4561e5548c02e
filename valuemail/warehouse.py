"""The DuckDB warehouse: one file, one writer, tables that are a public contract.

Analysts query these tables directly, so names and the listed columns are stable:
``events``, ``customers``, ``quarantine``, ``eligibility``, ``outbox``.  Other tables
(``ingested_files``, ``customer_metrics``, ``emails``) are documented in the README too.

DuckDB lets one process write a database file at a time.  :func:`connect` waits for a
lock held by another process (with backoff, up to ``wait_s``) instead of failing, and
Dagster assets that write additionally share the ``duckdb_writer`` pool (see
``pipelines/resources.py``), so parallel runs queue instead of fighting.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

SCHEMA: list[str] = [
    # Usage events.  event_id is unique (enforced by ingest's anti-join rather than a
    # PRIMARY KEY: an ART index over 50M ids costs gigabytes and halves ingest speed).
    """
    CREATE TABLE IF NOT EXISTS events (
        event_id         VARCHAR   NOT NULL,
        customer_id      VARCHAR   NOT NULL,
        occurred_at      TIMESTAMP NOT NULL,  -- UTC
        event_type       VARCHAR   NOT NULL,
        quantity         BIGINT    NOT NULL,  -- whole units >= 0
        duration_saved_s DOUBLE,              -- measured seconds saved, if the product knows
        amount_saved     DECIMAL(18, 4),      -- measured money saved, if the product knows ...
        currency         VARCHAR,             -- ... in this ISO 4217 currency
        properties       JSON,
        known_type       BOOLEAN   NOT NULL,  -- false: not in the value model (kept, flagged, not valued)
        source_file      VARCHAR   NOT NULL,
        ingested_at      TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS customers (
        customer_id  VARCHAR PRIMARY KEY,
        email        VARCHAR NOT NULL,
        name         VARCHAR,
        locale       VARCHAR NOT NULL,
        timezone     VARCHAR NOT NULL,
        plan         VARCHAR NOT NULL,
        country      VARCHAR,
        signed_up_at TIMESTAMP NOT NULL,      -- UTC
        company      VARCHAR,
        hourly_rate  DECIMAL(18, 4),
        currency     VARCHAR,
        source_file  VARCHAR NOT NULL,
        updated_at   TIMESTAMP NOT NULL
    )
    """,
    # One row per rejected (severity 'rejected') or flagged-but-kept ('flagged') input row.
    """
    CREATE TABLE IF NOT EXISTS quarantine (
        source_file VARCHAR   NOT NULL,
        row_number  BIGINT,                   -- 1-based data row (header not counted); NULL: whole file
        kind        VARCHAR   NOT NULL,       -- events | customers | file (an empty file)
        field       VARCHAR,
        reason      VARCHAR   NOT NULL,
        severity    VARCHAR   NOT NULL,       -- rejected | flagged
        raw         VARCHAR,                  -- the row as JSON, for the analyst
        ingested_at TIMESTAMP NOT NULL
    )
    """,
    # Files already ingested, by content hash: re-ingesting the same bytes is a no-op.
    """
    CREATE TABLE IF NOT EXISTS ingested_files (
        sha256           VARCHAR PRIMARY KEY,
        source_file      VARCHAR   NOT NULL,
        kind             VARCHAR   NOT NULL,
        rows_read        BIGINT    NOT NULL,
        rows_loaded      BIGINT    NOT NULL,
        rows_quarantined BIGINT    NOT NULL,
        ingested_at      TIMESTAMP NOT NULL
    )
    """,
    # E-mail engagement (SES event publishing, SMTP bounces): written by delivery's engagement
    # ingest, read by the engagement tier (metrics) and the sunset / suppression rules.
    """
    CREATE TABLE IF NOT EXISTS email_events (
        event_key    VARCHAR   NOT NULL,      -- unique id of the engagement record (idempotent re-ingest)
        message_id   VARCHAR,                 -- our Message-ID / the transport's id, to join outbox
        customer_id  VARCHAR,
        email        VARCHAR,
        campaign     VARCHAR,
        period       DATE,
        event_type   VARCHAR   NOT NULL,      -- send | delivery | bounce | complaint | open | click | subscription | reject
        bounce_type  VARCHAR,                 -- Permanent | Transient | Undetermined (bounces only)
        detail       VARCHAR,
        occurred_at  TIMESTAMP NOT NULL,
        source_file  VARCHAR
    )
    """,
]


class WarehouseLocked(RuntimeError):
    """Another process held the DuckDB write lock for longer than we were willing to wait."""


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text


def connect(path: str | Path, read_only: bool = False, wait_s: float = 600.0) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting (with jittered backoff) while another process holds the lock."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                if _is_lock_error(exc):
                    raise WarehouseLocked(f"{path} stayed locked by another process for {wait_s:.0f}s: {exc}") from exc
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)
    if not read_only:
        ensure_schema(con)
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in SCHEMA:
        con.execute(ddl)


@contextmanager
def open_warehouse(path: str | Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(path, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT, or ROLLBACK on any exception: nothing partial is ever committed."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    else:
        con.execute("COMMIT")
