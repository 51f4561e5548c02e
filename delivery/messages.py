"""Build the MIME message for one customer from what the emails stage rendered."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import duckdb

from delivery.mime import OutgoingEmail, build_message
from valuemail.config import Config
from valuemail.periods import Period


class MessageBuilder:
    def __init__(self, con: duckdb.DuckDBPyConnection, config: Config, period: Period):
        self.con = con
        self.config = config
        self.period = period
        self.sender = config.section("sender")

    def build(self, customer_id: str) -> EmailMessage:
        row = self.con.execute(
            """
            SELECT c.email, c.name, e.subject, e.html_path, e.text_path
            FROM emails e JOIN customers c USING (customer_id)
            WHERE e.campaign = ? AND e.period = ? AND e.customer_id = ?
            """,
            [self.period.campaign, self.period.start, customer_id],
        ).fetchone()
        if row is None:
            raise LookupError(f"no rendered e-mail for customer {customer_id} in {self.period}")
        email, name, subject, html_path, text_path = row
        mail = OutgoingEmail(
            from_name=self.sender["from_name"],
            from_address=self.sender["from_address"],
            to_name=name or "",
            to_address=email,
            subject=subject,
            text=Path(text_path).read_text(encoding="utf-8"),
            html=Path(html_path).read_text(encoding="utf-8"),
            headers={"List-Id": f"<{self.sender['list_id']}>"},
        )
        return build_message(mail)
