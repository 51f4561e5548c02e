"""Run a campaign period through the Dagster definitions (used by ``valuemail run``)."""

from __future__ import annotations

import os
from typing import Callable

import dagster as dg

from pipelines.instance import prepare_dagster_home
from pipelines.jobs import JOB_NAMES
from valuemail.config import Config
from valuemail.periods import Period, last_complete_period, parse_period
from valuemail.report import run_report
from valuemail.warehouse import open_warehouse


def _home_is_empty(config: Config) -> bool:
    landing = config.landing_dir
    has_files = landing.exists() and any(p.is_file() for p in landing.rglob("*"))
    return not has_files and not config.warehouse_path.exists()


def run_campaign(
    config: Config,
    campaign: str,
    period_text: str | None,
    sample_customers: int = 2000,
    echo: Callable[[str], None] = print,
) -> str:
    period: Period = parse_period(campaign, period_text) if period_text else last_complete_period(campaign)
    # The Dagster resource reads the same home and config as this process.
    os.environ["VALUEMAIL_HOME"] = str(config.home)
    if len(config.source) > 1:
        os.environ["VALUEMAIL_CONFIG"] = config.source[1]
    prepare_dagster_home(config)

    if _home_is_empty(config):
        from valuemail.sample_data import generate

        echo(f"{config.home} is empty: writing {sample_customers:,} sample customers into {config.landing_dir}")
        generate(config.landing_dir, customers=sample_customers, seed=42, end_date=None, fmt="parquet",
                 events_per_customer=None, progress=echo)

    from pipelines.definitions import defs

    with dg.DagsterInstance.get() as instance:
        for job_name, partition in (("ingest", None), (JOB_NAMES[campaign], period.key)):
            echo(f"running {job_name}" + (f" for {period}" if partition else ""))
            result = defs.resolve_job_def(job_name).execute_in_process(
                instance=instance, partition_key=partition, raise_on_error=True
            )
            if not result.success:  # pragma: no cover - raise_on_error raises first
                raise RuntimeError(f"{job_name} failed")
    with open_warehouse(config.warehouse_path, read_only=True) as con:
        return run_report(con, config, period)
