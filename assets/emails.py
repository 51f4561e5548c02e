"""Emails: the rendered HTML and text message for every customer who gets one."""

import dagster as dg

from assets._common import markdown_table, period_of
from pipelines.partitions import PARTITIONS
from pipelines.resources import WRITER_POOL, ValuemailResource
from report_templates.context import Links
from valuemail.emails import render_period_emails


def build_email_assets(campaign: str) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=[campaign, "emails"],
        partitions_def=PARTITIONS[campaign],
        deps=[dg.AssetKey([campaign, "eligibility"]), dg.AssetKey([campaign, "customer_metrics"])],
        group_name="emails",
        kinds={"jinja", "html"},
        owners=["team:growth"],
        pool=WRITER_POOL,
    )
    def emails(context: dg.AssetExecutionContext, valuemail: ValuemailResource) -> dg.MaterializeResult:
        """One rendered e-mail (subject, HTML, plain text) per customer whose decision is ``send``."""
        period = period_of(context, campaign)
        config = valuemail.load()
        base = config.section("sender")["public_base_url"].rstrip("/")

        def links_for(customer_id: str) -> Links:
            return Links(f"{base}/preferences", f"{base}/unsubscribe", f"{base}/app")

        with valuemail.warehouse() as con:
            summary = render_period_emails(con, config, period, links_for, progress=context.log.info)
            preview = markdown_table(
                con, "SELECT customer_id, locale, subject, html_bytes FROM emails WHERE campaign = ? AND period = ?",
                [campaign, period.start],
            )
        return dg.MaterializeResult(metadata={
            "dagster/row_count": summary.rendered,
            "max_html_bytes": summary.max_html_bytes,
            "folder": dg.MetadataValue.path(str(summary.folder)),
            "sample": preview,
        })

    return [emails]
