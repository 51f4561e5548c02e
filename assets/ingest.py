"""Ingest: event and customer files from the landing folder (and S3 prefix) into DuckDB."""

import dagster as dg

from assets._common import markdown_table
from pipelines.resources import WRITER_POOL, ValuemailResource
from valuemail.ingest import ingest_paths


@dg.multi_asset(
    specs=[
        dg.AssetSpec("events", description="Usage events, one row per event (UTC), deduplicated by event_id.",
                     group_name="ingest", kinds={"duckdb"}, owners=["team:data"]),
        dg.AssetSpec("customers", description="Customers, upserted by customer_id from customer files.",
                     group_name="ingest", kinds={"duckdb"}, owners=["team:data"]),
        dg.AssetSpec("quarantine", description="Rejected and flagged input rows with file, row, field and reason.",
                     group_name="ingest", kinds={"duckdb"}, owners=["team:data"]),
    ],
    pool=WRITER_POOL,
)
def ingested_files(context: dg.AssetExecutionContext, valuemail: ValuemailResource):
    """Load new files from the landing folder (and ``paths.landing_s3``) into the warehouse.

    Files already ingested (same bytes) are skipped; bad rows and empty files go to ``quarantine``.
    """
    config = valuemail.load()
    sources = [str(config.landing_dir)]
    if config.raw["paths"].get("landing_s3"):
        sources.append(config.raw["paths"]["landing_s3"])
    config.landing_dir.mkdir(parents=True, exist_ok=True)
    with valuemail.warehouse() as con:
        report = ingest_paths(con, sources, config, progress=context.log.info)
        counts = dict(zip(("events", "customers", "quarantine"), con.execute(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM customers), (SELECT count(*) FROM quarantine)"
        ).fetchone()))
        reasons = markdown_table(con, "SELECT kind, severity, reason, count(*) AS rows FROM quarantine GROUP BY ALL ORDER BY rows DESC", limit=20)
    yield dg.MaterializeResult(asset_key="events", metadata={
        "dagster/row_count": counts["events"], "events_loaded_this_run": report.events_loaded, "summary": report.describe(),
    })
    yield dg.MaterializeResult(asset_key="customers", metadata={
        "dagster/row_count": counts["customers"], "customers_loaded_this_run": report.customers_loaded,
    })
    yield dg.MaterializeResult(asset_key="quarantine", metadata={
        "dagster/row_count": counts["quarantine"], "quarantined_this_run": report.quarantined,
        "files_quarantined_this_run": report.files_quarantined, "by_reason": reasons,
    })
