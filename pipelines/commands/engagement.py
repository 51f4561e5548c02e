"""``valuemail engagement [PATHS]``: ingest SES event-publishing records into ``email_events``."""

from __future__ import annotations

import click


@click.command("engagement")
@click.argument("paths", nargs=-1)
@click.option("--force", is_flag=True, help="Re-read files already ingested (events are still never duplicated).")
@click.pass_obj
def engagement(obj, paths: tuple[str, ...], force: bool) -> None:
    """Load SES events (Send, Delivery, Bounce, Complaint, Open, Click, Subscription) from files or s3:// prefixes.

    Without PATHS, reads delivery.engagement_dir (default <home>/engagement) and
    delivery.engagement_s3.  Accepts Firehose objects (concatenated JSON, gzip or not), SNS
    notifications and NDJSON.  New hard bounces and complaints become suppressions in the
    preference store; SES unsubscribes become 'unsubscribed'.
    """
    import itertools

    from delivery.engagement import ingest_engagement, sources_from_config
    from delivery.prefs import open_store
    from valuemail.s3 import S3Error
    from valuemail.warehouse import open_warehouse

    config = obj.config
    try:
        with open_warehouse(config.warehouse_path) as con, open_store(config) as store:
            summary = ingest_engagement(con, itertools.chain(*sources_from_config(config, paths)), store=store, force=force)
    except S3Error as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary.describe())
