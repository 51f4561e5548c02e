"""KPIs: the send funnel, engagement rates, retention and churn by cohort, per campaign and period."""

import base64

import dagster as dg

from assets._common import markdown_table, period_of
from delivery.kpis import chart_png, compute_kpis
from pipelines.partitions import PARTITIONS
from pipelines.resources import WRITER_POOL, ValuemailResource


def _rate_check(campaign: str, metric: str, config_key: str, default: float, what: str):
    key = dg.AssetKey([campaign, "kpis"])

    @dg.asset_check(asset=key, name=f"{metric}_below_threshold",
                    description=f"Warns when the {what} rate reaches delivery.{config_key} (default {default:.1%}).")
    def _check(context: dg.AssetCheckExecutionContext, valuemail: ValuemailResource) -> dg.AssetCheckResult:
        period = period_of(context, campaign)
        threshold = float(valuemail.load().section("delivery").get(config_key, default))
        with valuemail.warehouse(read_only=True) as con:
            row = con.execute("SELECT value, numerator, denominator FROM kpis WHERE campaign = ? AND period = ? AND metric = ?",
                              [campaign, period.start, metric]).fetchone()
        value, num, den = row if row else (None, 0, 0)
        passed = value is None or value < threshold
        return dg.AssetCheckResult(
            passed=passed, severity=dg.AssetCheckSeverity.WARN,
            metadata={"rate": value if value is not None else 0.0, "threshold": threshold,
                      "numerator": num or 0, "denominator": den or 0},
            description=None if passed else f"{what} rate {value:.2%} reached the {threshold:.2%} threshold: "
                                            "pause and look at the list before the next send",
        )

    return _check


def build_kpi_assets(campaign: str) -> list:
    @dg.asset(
        key=[campaign, "kpis"],
        partitions_def=PARTITIONS[campaign],
        deps=[dg.AssetKey([campaign, "sent_emails"]), dg.AssetKey([campaign, "eligibility"]), "email_events"],
        group_name="kpis",
        kinds={"duckdb", "matplotlib"},
        owners=["team:growth"],
        pool=WRITER_POOL,
    )
    def kpis(context: dg.AssetExecutionContext, valuemail: ValuemailResource) -> dg.MaterializeResult:
        """Eligible, sent, skipped by reason, delivered; bounce, complaint, open, click-through and
        unsubscribe rates; retention and churn by signup cohort (tables ``kpis`` and ``kpi_cohorts``).

        Engagement arrives after the send: re-materialise the partition after ingesting events.
        """
        from delivery.prefs import open_store

        period = period_of(context, campaign)
        with valuemail.warehouse() as con, open_store(valuemail.load()) as store:
            k = compute_kpis(con, period, store=store)
            table = markdown_table(
                con,
                "SELECT metric, round(value, 4) AS value, numerator, denominator FROM kpis "
                "WHERE campaign = ? AND period = ? ORDER BY metric", [campaign, period.start], limit=60)
            cohorts = markdown_table(
                con,
                "SELECT cohort, customers, active_previous, active, retained, round(retention_rate, 3) AS retention, "
                "round(churn_rate, 3) AS churn FROM kpi_cohorts WHERE campaign = ? AND period = ? ORDER BY cohort DESC",
                [campaign, period.start], limit=24)
        png = base64.b64encode(chart_png(k)).decode("ascii")

        def pct(name: str) -> float:
            value = k.rate(name)
            return round(value * 100, 3) if value is not None else 0.0

        return dg.MaterializeResult(metadata={
            "eligible": k.counts["eligible"],
            "sent": k.counts["sent"],
            "skipped": k.counts["skipped"],
            "open_rate_pct": pct("open_rate"),
            "click_through_rate_pct": pct("click_through_rate"),
            "complaint_rate_pct": pct("complaint_rate"),
            "hard_bounce_rate_pct": pct("hard_bounce_rate"),
            "unsubscribe_rate_pct": pct("unsubscribe_rate"),
            "retention_rate_pct": pct("retention_rate"),
            "chart": dg.MetadataValue.md(f"![send funnel and retention](data:image/png;base64,{png})"),
            "kpis": table,
            "cohorts": cohorts,
        })

    return [
        kpis,
        _rate_check(campaign, "complaint_rate", "complaint_rate_warn", 0.001, "complaint"),
        _rate_check(campaign, "hard_bounce_rate", "hard_bounce_rate_warn", 0.02, "hard bounce"),
    ]
