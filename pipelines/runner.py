"""Run campaign periods through the Dagster definitions (``valuemail run`` and ``backfill``).

The CLI is a thin layer: it executes the same jobs the schedules start, in process, on the
local instance under ``<home>/dagster`` so every run also shows up in the UI.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from typing import Callable, Iterator

import dagster as dg

from pipelines.instance import prepare_dagster_home
from pipelines.jobs import JOB_NAMES
from valuemail.config import Config
from valuemail.periods import Period, last_complete_period, parse_period
from valuemail.report import run_report
from valuemail.warehouse import open_warehouse

Echo = Callable[[str], None]


def _home_is_empty(config: Config) -> bool:
    landing = config.landing_dir
    has_files = landing.exists() and any(p.is_file() for p in landing.rglob("*"))
    return not has_files and not config.warehouse_path.exists()


@contextmanager
def _environment(config: Config) -> Iterator[None]:
    """Point the Dagster resource and instance at ``config``'s home for the run, then restore."""
    wanted = {"VALUEMAIL_HOME": str(config.home), "DAGSTER_HOME": str(prepare_dagster_home(config))}
    if len(config.source) > 1:
        wanted["VALUEMAIL_CONFIG"] = config.source[1]
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _instance() -> Iterator[dg.DagsterInstance]:
    """The local instance; the first process to open a new one creates its SQLite schema alone.

    Two runs started at once on a fresh home would otherwise both create the run storage's
    tables and one would fail ("table jobs already exists").
    """
    lock_path = os.path.join(os.environ["DAGSTER_HOME"], ".instance.lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        instance = dg.DagsterInstance.get()
        # Touch (and so create) the run, event-log and schedule storages while we hold the lock.
        instance.get_runs(limit=1)
        instance.get_asset_keys()
        instance.all_instigator_state()
        fcntl.flock(lock, fcntl.LOCK_UN)
    with instance:
        yield instance


def _prepare(config: Config, sample_customers: int, echo: Echo) -> None:
    if _home_is_empty(config):
        from valuemail.sample_data import generate

        echo(f"{config.home} is empty: writing {sample_customers:,} sample customers into {config.landing_dir}")
        generate(config.landing_dir, customers=sample_customers, seed=42, end_date=None, fmt="parquet",
                 events_per_customer=None, progress=echo)


def _execute(instance: dg.DagsterInstance, job_name: str, partition: str | None, echo: Echo) -> None:
    from pipelines.definitions import defs

    echo(f"running {job_name}" + (f" for the period {partition}" if partition else ""))
    # Dagster's step-by-step DEBUG lines go to the run's event log (the UI), not the terminal.
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    defs.resolve_job_def(job_name).execute_in_process(
        run_config=quiet, instance=instance, partition_key=partition, raise_on_error=True
    )


def run_campaign(config: Config, campaign: str, period_text: str | None, sample_customers: int = 2000,
                 echo: Echo = print) -> str:
    """Run one campaign period (its job ingests new files first) and return the report."""
    period: Period = parse_period(campaign, period_text) if period_text else last_complete_period(campaign)
    _prepare(config, sample_customers, echo)
    with _environment(config), _instance() as instance:
        _execute(instance, JOB_NAMES[campaign], period.key, echo)  # ingest is part of every campaign job
    with open_warehouse(config.warehouse_path, read_only=True) as con:
        return run_report(con, config, period)


def backfill_campaign(config: Config, campaign: str, first: str, last: str, echo: Echo = print) -> list[Period]:
    """Run every period from ``first`` to ``last`` (inclusive), oldest first.  The ledger makes it safe."""
    start, end = parse_period(campaign, first), parse_period(campaign, last)
    if end < start:
        raise ValueError(f"--to {last} is before --from {first}")
    periods = [start]
    while periods[-1] < end:
        periods.append(periods[-1].next())
    _prepare(config, 0, echo)
    with _environment(config), _instance() as instance:
        for period in periods:
            _execute(instance, JOB_NAMES[campaign], period.key, echo)
    return periods
