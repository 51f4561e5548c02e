"""Eligibility: exactly one decision, with a reason code, per customer, campaign and period.

``reason = 'send'`` means the customer gets the email; every other reason says why not.
Rules are evaluated in a fixed order of precedence (first match wins), set-based in SQL.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import duckdb

from valuemail.config import Config
from valuemail.periods import Period
from valuemail.warehouse import transaction

DDL = """
CREATE TABLE IF NOT EXISTS eligibility (
    campaign    VARCHAR   NOT NULL,
    period      DATE      NOT NULL,
    customer_id VARCHAR   NOT NULL,
    reason      VARCHAR   NOT NULL,   -- 'send' or why not
    detail      VARCHAR,              -- a human sentence for the analyst
    decided_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (campaign, period, customer_id)
)
"""

# A deliberately simple e-mail syntax check: one @, no spaces, a dot in the domain.
EMAIL_RE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


@dataclass(frozen=True)
class EligibilitySummary:
    by_reason: dict[str, int]

    @property
    def send(self) -> int:
        return self.by_reason.get("send", 0)

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


def decide_eligibility(con: duckdb.DuckDBPyConnection, config: Config, period: Period) -> EligibilitySummary:
    """(Re)write the decisions for every customer who had signed up by the end of ``period``."""
    with transaction(con):
        con.execute(DDL)
        con.execute("DELETE FROM eligibility WHERE campaign = ? AND period = ?", [period.campaign, period.start])
        con.execute(
            """
            INSERT INTO eligibility
            SELECT $campaign, $period, c.customer_id,
                   CASE
                       WHEN NOT regexp_matches(c.email, $email_re) THEN 'invalid_email'
                       WHEN m.customer_id IS NULL THEN 'inactive_in_period'
                       WHEN m.tasks = 0 THEN 'nothing_to_report'
                       ELSE 'send'
                   END AS reason,
                   CASE
                       WHEN NOT regexp_matches(c.email, $email_re) THEN 'address ' || c.email || ' is not a valid e-mail address'
                       WHEN m.customer_id IS NULL THEN 'no events in the period'
                       WHEN m.tasks = 0 THEN 'active, but no tasks to report'
                       ELSE format('{} tasks, {} minutes saved', m.tasks, m.minutes_saved)
                   END AS detail,
                   now()
            FROM customers c
            LEFT JOIN customer_metrics m
                   ON m.customer_id = c.customer_id AND m.campaign = $campaign AND m.period = $period
            WHERE c.signed_up_at < $end
            """,
            {"campaign": period.campaign, "period": period.start, "end": period.end_ts, "email_re": EMAIL_RE},
        )
        rows = con.execute(
            "SELECT reason, count(*) FROM eligibility WHERE campaign = ? AND period = ? GROUP BY reason",
            [period.campaign, period.start],
        ).fetchall()
    return EligibilitySummary(by_reason=dict(Counter({r: n for r, n in rows}).most_common()))
