"""Per-customer metrics for one campaign period, computed set-based in DuckDB.

A period's rows are rewritten idempotently (delete-then-insert in one transaction), so
re-running or backfilling a period always gives the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from metrics.value_model import sync_value_model
from valuemail.config import Config
from valuemail.periods import Period
from valuemail.warehouse import transaction

DDL = """
CREATE TABLE IF NOT EXISTS customer_metrics (
    campaign            VARCHAR NOT NULL,
    period              DATE    NOT NULL,
    customer_id         VARCHAR NOT NULL,
    value_model_version VARCHAR NOT NULL,
    tasks               BIGINT  NOT NULL,
    minutes_saved       DECIMAL(18, 2) NOT NULL,
    money_saved         DECIMAL(18, 2) NOT NULL,
    currency            VARCHAR NOT NULL,
    events              BIGINT  NOT NULL,
    active_days         INTEGER NOT NULL,
    daily_tasks         BIGINT[] NOT NULL,    -- tasks per day of the period, first day first
    PRIMARY KEY (campaign, period, customer_id)
)
"""


@dataclass(frozen=True)
class MetricsSummary:
    rows: int
    tasks: int
    minutes_saved: float
    events: int


def compute_period_metrics(con: duckdb.DuckDBPyConnection, config: Config, period: Period) -> MetricsSummary:
    """(Re)compute ``customer_metrics`` for ``period`` from ``events`` and the value model."""
    model = config.value_model
    with transaction(con):
        con.execute(DDL)
        sync_value_model(con, model)
        con.execute("DELETE FROM customer_metrics WHERE campaign = ? AND period = ?", [period.campaign, period.start])
        con.execute(
            """
            INSERT INTO customer_metrics
            WITH valued AS (
                SELECT e.customer_id,
                       CAST(e.occurred_at AS DATE) AS day,
                       CASE WHEN vm.task THEN e.quantity ELSE 0 END AS tasks,
                       COALESCE(e.duration_saved_s / 60.0, e.quantity * vm.minutes_per_unit, 0) AS minutes,
                       CASE WHEN e.amount_saved IS NOT NULL AND e.currency = vm.currency THEN e.amount_saved
                            WHEN e.amount_saved IS NULL THEN e.quantity * vm.money_per_unit
                            ELSE 0 END AS money,
                       e.event_type
                FROM events e
                JOIN value_model vm ON vm.event_type = e.event_type AND vm.version = $version
                WHERE e.occurred_at >= $start AND e.occurred_at < $end
            ),
            per_day AS (
                SELECT customer_id, day, sum(tasks) AS tasks FROM valued GROUP BY ALL
            ),
            daily AS (
                SELECT c.customer_id, list(coalesce(p.tasks, 0) ORDER BY d.day) AS daily_tasks
                FROM (SELECT DISTINCT customer_id FROM per_day) c
                CROSS JOIN (SELECT CAST(range AS DATE) AS day FROM range($start, $end, INTERVAL 1 DAY)) d
                LEFT JOIN per_day p ON p.customer_id = c.customer_id AND p.day = d.day
                GROUP BY c.customer_id
            )
            SELECT $campaign, $period, v.customer_id, $version,
                   sum(v.tasks), round(sum(v.minutes), 2), round(sum(v.money), 2), $currency,
                   count(*), count(DISTINCT v.day), any_value(daily.daily_tasks)
            FROM valued v JOIN daily USING (customer_id)
            GROUP BY v.customer_id
            """,
            {
                "campaign": period.campaign,
                "period": period.start,
                "version": model.version,
                "currency": model.currency,
                "start": period.start_ts,
                "end": period.end_ts,
            },
        )
        rows, tasks, minutes, events = con.execute(
            "SELECT count(*), coalesce(sum(tasks), 0), coalesce(sum(minutes_saved), 0), coalesce(sum(events), 0) "
            "FROM customer_metrics WHERE campaign = ? AND period = ?",
            [period.campaign, period.start],
        ).fetchone()
    return MetricsSummary(rows=rows, tasks=int(tasks), minutes_saved=float(minutes), events=int(events))
