"""Render the period's e-mails for every customer whose decision is ``send``.

Writes ``<home>/emails/<campaign>/<period>/<customer>.html|.txt`` and one ``emails`` row
each, so an analyst can open any message before (or after) it is sent, and delivery
builds MIME from exactly what was rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import duckdb

from report_templates.context import Links, weekly_context
from report_templates.render import EmailRenderer
from valuemail.config import Config
from valuemail.periods import Period
from valuemail.warehouse import transaction

DDL = """
CREATE TABLE IF NOT EXISTS emails (
    campaign    VARCHAR   NOT NULL,
    period      DATE      NOT NULL,
    customer_id VARCHAR   NOT NULL,
    locale      VARCHAR   NOT NULL,
    subject     VARCHAR   NOT NULL,
    preheader   VARCHAR   NOT NULL,
    html_path   VARCHAR   NOT NULL,
    text_path   VARCHAR   NOT NULL,
    html_bytes  INTEGER   NOT NULL,
    rendered_at TIMESTAMP NOT NULL,
    PRIMARY KEY (campaign, period, customer_id)
)
"""


@dataclass(frozen=True)
class EmailsSummary:
    rendered: int
    max_html_bytes: int
    folder: Path
    sample_html: Path | None


def safe_filename(customer_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in customer_id)


def emails_dir(config: Config, period: Period) -> Path:
    return config.home / "emails" / period.campaign / period.key


def how_we_counted(config: Config) -> str:
    model = config.value_model
    return f"minutes and money saved per task come from value model {model.version}; measured values win over defaults."


def render_period_emails(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    period: Period,
    links_for: Callable[[str], Links],
    progress: Callable[[str], None] | None = None,
) -> EmailsSummary:
    renderer = EmailRenderer()
    folder = emails_dir(config, period)
    folder.mkdir(parents=True, exist_ok=True)
    cur = con.execute(
        """
        SELECT c.customer_id, c.name, c.locale, m.tasks, m.minutes_saved, m.money_saved, m.currency, m.active_days
        FROM eligibility e
        JOIN customers c USING (customer_id)
        JOIN customer_metrics m ON m.customer_id = e.customer_id AND m.campaign = e.campaign AND m.period = e.period
        WHERE e.campaign = ? AND e.period = ? AND e.reason = 'send'
        ORDER BY c.customer_id
        """,
        [period.campaign, period.start],
    )
    columns = [d[0] for d in cur.description]
    sender = config.section("sender")
    counted = how_we_counted(config)
    rows, max_bytes, sample = [], 0, None
    for values in cur.fetchall():
        record = dict(zip(columns, values))
        context = weekly_context(record, record, links_for(record["customer_id"]), sender, counted)
        email = renderer.render("weekly", context)
        base = folder / safe_filename(record["customer_id"])
        html_path, text_path = base.with_suffix(".html"), base.with_suffix(".txt")
        html_path.write_text(email.html, encoding="utf-8")
        text_path.write_text(email.text, encoding="utf-8")
        size = len(email.html.encode("utf-8"))
        max_bytes = max(max_bytes, size)
        sample = sample or html_path
        rows.append((period.campaign, period.start, record["customer_id"], email.locale, email.subject, email.preheader,
                     str(html_path), str(text_path), size))
        if progress and len(rows) % 1000 == 0:
            progress(f"rendered {len(rows)} e-mails")
    with transaction(con):
        con.execute(DDL)
        con.execute("DELETE FROM emails WHERE campaign = ? AND period = ?", [period.campaign, period.start])
        if rows:
            con.executemany("INSERT INTO emails VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now())", rows)
    return EmailsSummary(rendered=len(rows), max_html_bytes=max_bytes, folder=folder, sample_html=sample)
