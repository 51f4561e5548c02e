"""Metrics: per-customer value figures for each campaign period."""

import dagster as dg

from assets._common import markdown_table, period_of
from metrics.period import compute_period_metrics
from pipelines.partitions import PARTITIONS
from pipelines.resources import WRITER_POOL, ValuemailResource


def build_metrics_assets(campaign: str) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=[campaign, "customer_metrics"],
        partitions_def=PARTITIONS[campaign],
        deps=["events", "customers"],
        group_name="metrics",
        kinds={"duckdb"},
        owners=["team:data"],
        pool=WRITER_POOL,
    )
    def customer_metrics(context: dg.AssetExecutionContext, valuemail: ValuemailResource) -> dg.MaterializeResult:
        """Tasks, minutes and money saved per customer in the period, from events and the value model.

        Rewritten idempotently per partition; every row records the value-model version.
        """
        period = period_of(context, campaign)
        config = valuemail.load()
        with valuemail.warehouse() as con:
            summary = compute_period_metrics(con, config, period)
            preview = markdown_table(
                con,
                "SELECT customer_id, tasks, minutes_saved, money_saved, currency, active_days FROM customer_metrics "
                "WHERE campaign = ? AND period = ? ORDER BY tasks DESC",
                [campaign, period.start],
            )
        return dg.MaterializeResult(metadata={
            "dagster/row_count": summary.rows,
            "tasks": summary.tasks,
            "minutes_saved": summary.minutes_saved,
            "events": summary.events,
            "top_customers": preview,
        })

    return [customer_metrics]
