"""Segments: lifecycle stage and engagement tier of every customer, per campaign period.

Thin: read the partition → call :func:`metrics.segments.compute_segments` → metadata.
Definitions (stages, tiers, look-back, consecutive_unopened) live in ``metrics/segments.py``.
"""


import warnings

import dagster as dg

from assets._common import markdown_table, period_of
from metrics import checks
from metrics.segments import compute_segments
from pipelines.partitions import PARTITIONS
from pipelines.resources import WRITER_POOL, ValuemailResource


def build_segments_assets(campaign: str) -> list[dg.AssetsDefinition]:
    key = dg.AssetKey([campaign, "segments"])
    partitions = PARTITIONS[campaign]

    @dg.asset(
        key=key,
        partitions_def=partitions,
        deps=["events", "customers", "email_events"],
        group_name="segments",
        kinds={"duckdb"},
        owners=["team:data"],
        pool=WRITER_POOL,
    )
    def segments(context: dg.AssetExecutionContext, valuemail: ValuemailResource) -> dg.MaterializeResult:
        """Every customer signed up before the period end: lifecycle stage (prospect, new, active,
        lapsed, seasonal, churned) as of the period end (or the run's cut-off), engagement tier (silent, opened, clicked,
        at_risk) from e-mail engagement, consecutive unopened value e-mails, and the reason in words.

        Rewritten idempotently per partition; read by eligibility / delivery (sunset rule)."""
        period = period_of(context, campaign)
        with valuemail.warehouse() as con:
            summary = compute_segments(con, valuemail.load(), period)
            params = [campaign, period.start]
            matrix = markdown_table(
                con,
                "SELECT stage, count(*) AS customers, count(*) FILTER (WHERE tier = 'at_risk') AS at_risk, "
                "count(*) FILTER (WHERE tier = 'clicked') AS clicked, count(*) FILTER (WHERE tier = 'opened') AS opened, "
                "count(*) FILTER (WHERE tier = 'silent') AS silent FROM segments WHERE campaign = ? AND period = ? "
                "GROUP BY stage ORDER BY customers DESC",
                params,
            )
            preview = markdown_table(
                con,
                "SELECT customer_id, stage, tier, consecutive_unopened, reason FROM segments "
                "WHERE campaign = ? AND period = ? ORDER BY customer_id",
                params,
            )
        return dg.MaterializeResult(metadata={
            "dagster/row_count": summary.rows,
            "as_of": summary.as_of,
            "by_stage": dg.MetadataValue.json(summary.by_stage),
            "by_tier": dg.MetadataValue.json(summary.by_tier),
            "stage_by_tier": matrix,
            "preview": preview,
        })

    def one_row_per_customer(context: dg.AssetCheckExecutionContext, valuemail: ValuemailResource) -> dg.AssetCheckResult:
        period = period_of(context, campaign)
        with valuemail.warehouse() as con:
            outcome = checks.check_segments_cover_customers(con, period)
        return dg.AssetCheckResult(passed=outcome.passed, severity=dg.AssetCheckSeverity.ERROR,
                                   description=outcome.description, metadata=outcome.metadata)

    with warnings.catch_warnings():  # partitioned asset checks are "preview" in dagster 1.13
        warnings.simplefilter("ignore", dg.PreviewWarning)
        check = dg.asset_check(
            asset=key,
            name="one_row_per_customer",
            description="Exactly one row per customer signed up before the period end, with a known stage and tier.",
            blocking=True,
            partitions_def=partitions,
        )(one_row_per_customer)
    return [segments, check]
