"""Run campaign periods through the Dagster definitions (``valuemail run`` and ``backfill``).

The CLI is a thin layer: it executes the same jobs the schedules start, in process, on the
local instance under ``<home>/dagster`` so every run also shows up in the UI.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import threading
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Callable, Iterator

import dagster as dg

from pipelines.instance import prepare_dagster_home
from pipelines.jobs import ALLOW_LATE_TAG, CUTOFF_TAG, JOB_NAMES
from pipelines.resources import WRITER_POOL
from valuemail.config import Config
from valuemail.periods import Period, data_cutoff, resolve_period
from valuemail.report import run_report, stale_periods
from valuemail.warehouse import open_warehouse

Echo = Callable[[str], None]


def _home_is_empty(config: Config) -> bool:
    if config.settings.paths.landing_s3:
        return False  # the campaign job's ingest reads the S3 prefix
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
        if config.mode() == "production":
            raise ValueError(
                f"{config.home} holds no data, and in production valuemail never writes sample customers to send "
                f"to: put your customers and events files into {config.landing_dir} (or run `valuemail ingest "
                f"<files or s3://bucket/prefix>`, or set paths.landing_s3), then run again")
        from valuemail.sample_data import generate

        echo(f"{config.home} is empty: writing {sample_customers:,} sample customers into {config.landing_dir}")
        generate(config.landing_dir, customers=sample_customers, seed=42, end_date=None, fmt="parquet",
                 events_per_customer=None, progress=echo)


# Every CLI run records which process runs it, so a later run can tell a dead one from a live one.
PID_TAG, HOST_TAG = "valuemail/pid", "valuemail/host"
UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
              dg.DagsterRunStatus.CANCELING]


def _process_is_gone(run: dg.DagsterRun) -> bool:
    """True when ``run`` was started by ``valuemail`` on this host and that process no longer exists."""
    pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
    if not pid or host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)  # PermissionError: it exists, as another user's process
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def release_dead_runs(instance: dg.DagsterInstance, echo: Echo) -> None:
    """Mark unfinished runs whose process died (SIGKILL, OOM, power cut) failed and free their pool slots.

    A killed run keeps its ``duckdb_writer`` slot and stays STARTED; without this every later
    run on the home would wait for that slot forever.  Slots still held by runs that have
    finished are freed too.
    """
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        if _process_is_gone(run):
            instance.report_run_failed(run, message=f"its process {run.tags[PID_TAG]} is gone (killed?); "
                                                    "marked failed by the next valuemail run")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            echo(f"run {run.run_id} ({run.job_name} {run.tags.get('dagster/partition', '')}) died without finishing: "
                 "marked failed, its pool slot freed")
    holders = instance.event_log_storage.get_concurrency_info(WRITER_POOL).active_run_ids
    for run_id in holders:
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        else:
            echo(f"waiting for run {run_id} ({run.job_name} {run.tags.get('dagster/partition', '')}, "
                 f"pid {run.tags.get(PID_TAG, '?')}): it holds the {WRITER_POOL} slot.  If that run is dead, "
                 f"free the slot with: DAGSTER_HOME={os.environ['DAGSTER_HOME']} dagster run delete {run_id}")


class RunInterrupted(Exception):
    """SIGTERM / Ctrl-C during a run: the run is marked failed and its slot freed; the caller exits at once."""


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _execute(instance: dg.DagsterInstance, job_name: str, period: Period, echo: Echo,
             allow_late: bool = False) -> None:
    """Run the job in a worker thread, so SIGTERM / Ctrl-C reach this (main) thread.

    In the main thread Dagster captures both signals and checks for them only between a
    step's own instructions: a run waiting for a pool slot never sees them.  Here the main
    thread gets them, marks the run failed, frees its slot and raises :class:`RunInterrupted`;
    the process then exits without waiting for the worker, as if killed — the state it leaves
    is exactly what the next run recovers from after a crash (reconcile; ``release_dead_runs``).
    """
    from pipelines.definitions import defs

    release_dead_runs(instance, echo)
    until = f" (measured up to {period.as_of}, exclusive)" if period.as_of < period.end else ""
    late = " (late send allowed)" if allow_late else ""
    echo(f"running {job_name} for the period {period.key}{until}{late}")
    # Dagster's step-by-step DEBUG lines go to the run's event log (the UI), not the terminal.
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    errors: list[BaseException] = []

    def execute() -> None:
        try:
            defs.resolve_job_def(job_name).execute_in_process(
                run_config=quiet, instance=instance, partition_key=period.key, raise_on_error=True,
                tags={PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), CUTOFF_TAG: period.cutoff.isoformat(),
                      **({ALLOW_LATE_TAG: "true"} if allow_late else {})},
            )
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    worker = threading.Thread(target=execute, name="valuemail-run", daemon=True)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if main else None
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        runs = instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED, tags={PID_TAG: str(os.getpid())}))
        for run in runs:
            instance.report_run_failed(run, message="interrupted (SIGTERM / Ctrl-C)")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        ids = ", ".join(r.run_id for r in runs) or "not started yet"
        raise RunInterrupted(f"interrupted: run {ids} marked failed and its pool slot freed; the next run of the "
                             "period reconciles and completes what was in flight") from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    if errors:
        raise errors[0]


def run_campaign(config: Config, campaign: str, period_text: str | None, sample_customers: int = 2000,
                 echo: Echo = print, as_of: date | None = None, now: datetime | None = None,
                 allow_late: bool = False) -> str:
    """Run one campaign period (its job ingests new files first) and return the report.

    The data cut-off is ``as_of`` (default: the day of ``now``): a period that has not ended by
    then is measured up to it.  A period whose send window has closed is computed but not sent
    unless ``allow_late``."""
    now = now or datetime.now(timezone.utc)
    cutoff = data_cutoff(as_of, now)
    period = resolve_period(config, campaign, period_text, now).until(cutoff)
    _prepare(config, sample_customers, echo)
    with _environment(config), _instance() as instance:
        _execute(instance, JOB_NAMES[campaign], period, echo, allow_late)  # ingest is part of every campaign job
    with open_warehouse(config.warehouse_path, read_only=True) as con:
        return run_report(con, config, period)


def backfill_campaign(config: Config, campaign: str, first: str, last: str, echo: Echo = print,
                      now: datetime | None = None, allow_late: bool = False) -> tuple[list[Period], list[Period]]:
    """Run every period from ``first`` to ``last`` (inclusive), oldest first.  The ledger makes it safe.

    Periods whose send window has closed are computed but not sent unless ``allow_late``.
    Returns the periods run and those of them that were stale (nothing sent).
    """
    now = now or datetime.now(timezone.utc)
    cutoff = data_cutoff(None, now)
    start, end = (resolve_period(config, campaign, text, now) for text in (first, last))
    if end < start:
        raise ValueError(f"--to {last} is before --from {first}")
    periods = [start.until(cutoff)]
    while periods[-1] < end:
        periods.append(periods[-1].next().until(cutoff))
    _prepare(config, 0, echo)
    with _environment(config), _instance() as instance:
        for period in periods:
            _execute(instance, JOB_NAMES[campaign], period, echo, allow_late)
    with open_warehouse(config.warehouse_path, read_only=True) as con:
        return periods, stale_periods(con, periods)
