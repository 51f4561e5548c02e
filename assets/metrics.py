"""Metrics: per-customer value figures for each campaign period, and their blocking checks.

Thin: read the partition → call :func:`metrics.period.compute_period_metrics` → metadata.
All definitions live in ``metrics/`` (README there).
"""


import warnings

import dagster as dg

from assets._common import markdown_table, period_of
from metrics import checks, report
from metrics.period import compute_period_metrics
from pipelines.partitions import PARTITIONS
from pipelines.resources import WRITER_POOL, ValuemailResource


def _check_result(outcome: checks.CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=outcome.description,
        metadata={k: (dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v) for k, v in outcome.metadata.items()},
    )


def build_metrics_assets(campaign: str) -> list[dg.AssetsDefinition]:
    metrics_key = dg.AssetKey([campaign, "customer_metrics"])
    distribution_key = dg.AssetKey([campaign, "peer_distribution"])
    partitions = PARTITIONS[campaign]

    @dg.multi_asset(
        name=f"{campaign}_metrics",
        specs=[
            dg.AssetSpec(
                metrics_key,
                description=(
                    "One row per customer active (>= 1 event) in the period: tasks, minutes and money saved "
                    "(value model, measured values win), series, highlights, milestones, streaks, previous "
                    "period, lifetime totals and peer percentiles. Definitions: metrics/README.md."
                ),
                deps=["events", "customers"],
                group_name="metrics",
                kinds={"duckdb"},
                owners=["team:data"],
            ),
            dg.AssetSpec(
                distribution_key,
                description=(
                    "Per cohort of >= k active customers and metric (tasks, minutes_saved): customer counts "
                    "over fixed 1-2-5 buckets, for the 'you are here' chart. Never an individual's value."
                ),
                deps=["events", "customers"],
                group_name="metrics",
                kinds={"duckdb"},
                owners=["team:data"],
            ),
        ],
        partitions_def=partitions,
        pool=WRITER_POOL,
    )
    def period_metrics(context: dg.AssetExecutionContext, valuemail: ValuemailResource):
        """Compute the period's ``customer_metrics`` and ``peer_distribution`` (delete-then-insert)."""
        period = period_of(context, campaign)
        config = valuemail.load()
        with valuemail.warehouse() as con:
            summary = compute_period_metrics(con, config, period, progress=context.log.info)
            params = [campaign, period.start]
            preview = markdown_table(
                con,
                "SELECT customer_id, tasks, minutes_saved, money_saved, currency, active_days, streak_weeks, "
                "tasks_change_pct, peer_cohort, tasks_percentile FROM customer_metrics "
                "WHERE campaign = ? AND period = ? ORDER BY tasks DESC, customer_id",
                params,
            )
            stats = report.distribution(con, period)
            labels, counts = report.histogram_counts(con, period, "tasks")
            cohorts = markdown_table(
                con,
                "SELECT cohort, metric, cohort_size, list_sum(counts) AS customers, len(counts) AS buckets "
                "FROM peer_distribution WHERE campaign = ? AND period = ? ORDER BY cohort, metric",
                params,
                limit=40,
            )
            dist_rows = con.execute(
                "SELECT count(*) FROM peer_distribution WHERE campaign = ? AND period = ?", params
            ).fetchone()[0]
        chart = report.markdown_image(
            report.histogram_png(labels, counts, f"Tasks per active customer, {campaign} {period.key}"),
            "tasks per customer",
        ) if counts else "(no active customers)"
        yield dg.MaterializeResult(
            asset_key=metrics_key,
            metadata={
                "dagster/row_count": summary.rows,
                "value_model_version": summary.value_model_version,
                "tasks": summary.tasks,
                "minutes_saved": summary.minutes_saved,
                "events": summary.events,
                "unknown_events": summary.unknown_events,
                "unknown_event_types": dg.MetadataValue.json(summary.unknown_event_types),
                "money_saved_by_currency": dg.MetadataValue.json(summary.money_by_currency),
                "customers_compared_with_peers": summary.customers_compared,
                "active_customers_by_cohort": dg.MetadataValue.json(summary.cohorts),
                "distribution": dg.MetadataValue.md(report.distribution_markdown(stats)),
                "tasks_histogram": dg.MetadataValue.md(chart),
                "preview": preview,
                "timings_s": dg.MetadataValue.json(summary.timings_s),
            },
        )
        yield dg.MaterializeResult(
            asset_key=distribution_key,
            metadata={
                "dagster/row_count": int(dist_rows),
                "cohorts_compared": summary.cohorts_compared,
                "cohorts": cohorts,
            },
        )

    def _check(name: str, fn, description: str) -> dg.AssetChecksDefinition:
        def _run(context: dg.AssetCheckExecutionContext, valuemail: ValuemailResource) -> dg.AssetCheckResult:
            period = period_of(context, campaign)
            config = valuemail.load()
            with valuemail.warehouse() as con:
                return _check_result(fn(con, config, period))

        _run.__name__ = name
        with warnings.catch_warnings():  # partitioned asset checks are "preview" in dagster 1.13
            warnings.simplefilter("ignore", dg.PreviewWarning)
            return dg.asset_check(asset=metrics_key, name=name, description=description, blocking=True,
                                  partitions_def=partitions)(_run)

    return [
        period_metrics,
        _check("no_negative_values",
               lambda con, config, period: checks.check_no_negative_values(con, period),
               "No negative tasks, minutes or money; percentiles in [0, 100]; no negative raw inputs."),
        _check("totals_reconcile",
               checks.check_totals_reconcile,
               "Tasks, events and unknown events equal the raw events; minutes and money per currency "
               "equal the unrounded raw totals within row rounding (an independent naive recomputation)."),
        _check("every_active_customer_has_row",
               lambda con, config, period: checks.check_every_active_customer_has_row(con, period),
               "Exactly one row per customer with at least one event in the period."),
        _check("peer_privacy",
               checks.check_peer_privacy,
               "Peer percentiles and histograms only for cohorts of at least k active customers."),
    ]

