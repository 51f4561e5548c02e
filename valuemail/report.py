"""The short report ``valuemail run`` prints: what happened, and where to look."""

from __future__ import annotations

import duckdb

from valuemail.config import Config
from valuemail.periods import Period


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> int:
    try:
        return int(con.execute(sql, params or []).fetchone()[0] or 0)
    except duckdb.CatalogException:
        return 0


def _table(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[tuple]:
    try:
        return con.execute(sql, params).fetchall()
    except duckdb.CatalogException:
        return []


def stale_periods(con: duckdb.DuckDBPyConnection, periods: list[Period]) -> list[Period]:
    """Those of ``periods`` whose last run decided ``stale_period`` (send window closed, nothing sent)."""
    keys = {(p.campaign, p.start): p for p in periods}
    rows = _table(con, "SELECT DISTINCT campaign, period FROM eligibility WHERE reason = 'stale_period' "
                       "AND list_contains(?, period)", [[p.start for p in periods]])
    return sorted(keys[row] for row in rows if row in keys)


def run_report(con: duckdb.DuckDBPyConnection, config: Config, period: Period) -> str:
    p = [period.campaign, period.start]
    events = _scalar(con, "SELECT count(*) FROM events")
    customers = _scalar(con, "SELECT count(*) FROM customers")
    rejected = _scalar(con, "SELECT count(*) FROM quarantine WHERE severity = 'rejected'")
    flagged = _scalar(con, "SELECT count(*) FROM quarantine WHERE severity = 'flagged'")
    decisions = _table(con, "SELECT reason, count(*) n FROM eligibility WHERE campaign = ? AND period = ? GROUP BY reason ORDER BY n DESC, reason", p)
    emails = _scalar(con, "SELECT count(*) FROM emails WHERE campaign = ? AND period = ?", p)
    ledger = _table(con, "SELECT status, count(*) n FROM outbox WHERE campaign = ? AND period = ? GROUP BY status ORDER BY status", p)

    eligible = sum(n for r, n in decisions if r == "send")
    lines = [
        f"valuemail — {period.campaign} e-mail for the period starting {period.key} (until {period.as_of.isoformat()}, exclusive)",
        "",
        f"  warehouse      {events:,} events, {customers:,} customers  ({config.warehouse_path})",
        f"  quarantine     {rejected:,} rows rejected, {flagged:,} flagged but kept  (SELECT * FROM quarantine)",
        f"  eligibility    {eligible:,} to send, {sum(n for _, n in decisions) - eligible:,} skipped",
    ]
    for reason, n in decisions:
        if reason != "send":
            lines.append(f"                   {n:>8,}  {reason}")
    if any(reason == "stale_period" for reason, _ in decisions):
        from delivery.window import SendWindow

        lines += [f"  NOT SENT       stale period: {SendWindow.from_config(config).describe(period)};",
                  "                 nothing is sent for it.  To send it anyway: valuemail run --allow-late"]
    lines.append(f"  e-mails        {emails:,} rendered  ({config.home / 'emails' / period.campaign / period.key})")
    lines.append("  delivery       " + (", ".join(f"{n:,} {s}" for s, n in ledger) or "nothing sent")
                 + f"  ({config.outbox_dir / period.campaign / period.key})")
    lines += [
        "",
        "  why did someone get no e-mail?  SELECT * FROM eligibility WHERE customer_id = '…'",
        f"  open the warehouse:             duckdb {config.warehouse_path}",
    ]
    return "\n".join(lines)
