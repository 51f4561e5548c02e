"""Delivery: one eligibility decision per customer, then exactly-once sending via the outbox ledger."""

import dagster as dg

from assets._common import markdown_table, period_of
from delivery.eligibility import decide_eligibility
from delivery.messages import MessageBuilder
from delivery.outbox import FileTransport
from delivery.send import deliver
from pipelines.partitions import PARTITIONS
from pipelines.resources import WRITER_POOL, ValuemailResource


def build_delivery_assets(campaign: str) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=[campaign, "eligibility"],
        partitions_def=PARTITIONS[campaign],
        deps=[dg.AssetKey([campaign, "customer_metrics"]), "customers"],
        group_name="delivery",
        kinds={"duckdb"},
        owners=["team:growth"],
        pool=WRITER_POOL,
    )
    def eligibility(context: dg.AssetExecutionContext, valuemail: ValuemailResource) -> dg.MaterializeResult:
        """Exactly one decision per customer for the period: ``send`` or the reason why not."""
        period = period_of(context, campaign)
        with valuemail.warehouse() as con:
            summary = decide_eligibility(con, valuemail.load(), period)
            table = markdown_table(
                con,
                "SELECT reason, count(*) AS customers FROM eligibility WHERE campaign = ? AND period = ? "
                "GROUP BY reason ORDER BY customers DESC",
                [campaign, period.start],
                limit=30,
            )
        return dg.MaterializeResult(metadata={
            "dagster/row_count": summary.total,
            "send": summary.send,
            "skipped": summary.total - summary.send,
            "by_reason": table,
        })

    @dg.asset(
        key=[campaign, "sent_emails"],
        partitions_def=PARTITIONS[campaign],
        deps=[dg.AssetKey([campaign, "emails"]), dg.AssetKey([campaign, "eligibility"])],
        group_name="delivery",
        kinds={"email"},
        owners=["team:growth"],
        pool=WRITER_POOL,
    )
    def sent_emails(context: dg.AssetExecutionContext, valuemail: ValuemailResource) -> dg.MaterializeResult:
        """The outbox ledger for the period: each eligible customer's message sent exactly once."""
        period = period_of(context, campaign)
        config = valuemail.load()
        transport = FileTransport(config.outbox_dir)
        with valuemail.warehouse() as con:
            builder = MessageBuilder(con, config, period)
            summary = deliver(con, period, transport, builder.build, progress=context.log.info)
            table = markdown_table(
                con,
                "SELECT status, count(*) AS messages FROM outbox WHERE campaign = ? AND period = ? GROUP BY status",
                [campaign, period.start],
            )
        return dg.MaterializeResult(metadata={
            "sent_this_run": summary.by_status.get("sent", 0),
            "failed_this_run": summary.by_status.get("failed", 0),
            "reconciled": summary.reconciled,
            "ledger": table,
            "outbox": dg.MetadataValue.path(str(transport.root / campaign / period.key)),
        })

    return [eligibility, sent_emails]
