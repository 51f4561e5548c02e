"""Small helpers shared by the asset modules: period from the partition, markdown previews."""

from __future__ import annotations

import sys
from datetime import date, datetime, timezone
from typing import Callable

import dagster as dg
import duckdb

from pipelines.jobs import ALLOW_LATE_TAG, CUTOFF_TAG
from valuemail.periods import Period



def period_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, campaign: str) -> Period:
    """The partition's period, measured up to the run's cut-off (its tag; a run started without
    one, e.g. from the UI, uses today, UTC)."""
    tag = context.run.tags.get(CUTOFF_TAG)
    cutoff = date.fromisoformat(tag) if tag else datetime.now(timezone.utc).date()
    return Period(campaign, date.fromisoformat(context.partition_key)).until(cutoff)


def progress_to(context: dg.AssetExecutionContext) -> Callable[[str], None]:
    """Progress lines to the run's event log (the UI) and to the terminal (``valuemail run`` shows
    only warnings from Dagster's own logger there)."""
    def emit(line: str) -> None:
        context.log.info(line)
        print(f"[{context.asset_key.to_user_string()}] {line}", file=sys.stderr, flush=True)

    return emit


def allow_late(context: dg.AssetExecutionContext) -> bool:
    """Whether the run carries ``valuemail/allow_late = true``."""
    value = context.run.tags.get(ALLOW_LATE_TAG, "false").strip().lower()
    if value not in ("true", "false"):
        raise dg.Failure(description=f"run tag {ALLOW_LATE_TAG} must be true or false, not {value!r}")
    return value == "true"


def markdown_table(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None, limit: int = 10) -> dg.MetadataValue:
    """The first ``limit`` rows of a query as a markdown table for the Dagster UI."""
    cur = con.execute(f"SELECT * FROM ({sql}) LIMIT {int(limit)}", params or [])
    columns = [d[0] for d in cur.description]
    rows = cur.fetchall()
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:80]
