"""Engagement: SES event-publishing records (files or an S3 prefix) → ``email_events`` + suppressions."""

import dagster as dg

from assets._common import markdown_table
from delivery.engagement import ingest_engagement, sources_from_config
from pipelines.resources import WRITER_POOL, ValuemailResource


@dg.asset(
    key="email_events",
    group_name="ingest",
    kinds={"duckdb", "ses"},
    owners=["team:growth"],
    pool=WRITER_POOL,
)
def email_events(context: dg.AssetExecutionContext, valuemail: ValuemailResource) -> dg.MaterializeResult:
    """Send, Delivery, Bounce, Complaint, Open, Click and Subscription events, joined to the outbox ledger.

    Reads new files from ``delivery.engagement_dir`` and ``delivery.engagement_s3`` (SNS or
    Firehose JSON); re-ingesting adds nothing.  New hard bounces and complaints become
    suppressions in the preference store; opens and clicks feed the engagement tier and
    the sunset rule.
    """
    import itertools

    from delivery.prefs import open_store

    config = valuemail.load()
    with valuemail.warehouse() as con, open_store(config) as store:
        summary = ingest_engagement(con, itertools.chain(*sources_from_config(config)), store=store)
        context.log.info(summary.describe())
        preview = markdown_table(
            con, "SELECT event_type, count(*) AS events, count(DISTINCT customer_id) AS customers, max(occurred_at) AS latest "
                 "FROM email_events GROUP BY event_type ORDER BY events DESC")
        total = con.execute("SELECT count(*) FROM email_events").fetchone()[0]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": total,
        "new_events": sum(summary.inserted.values()),
        "files_read": summary.files,
        "unmatched": summary.unmatched,
        "suppressions_added": sum(summary.suppressions.values()),
        "by_type": preview,
    })
