"""Sensors: new landing files trigger ingest; periods with deferred customers are re-run daily.

Landing: new files in the landing folder (or the ``paths.landing_s3`` prefix). The cursor remembers each file's size and modification time, so a file is requested
once; ingest itself also skips files whose bytes it has already loaded (sha256), so even
a lost cursor never ingests anything twice.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

import dagster as dg

from delivery.eligibility import periods_with_deferred
from delivery.window import SendWindow
from pipelines.jobs import CUTOFF_TAG, JOB_NAMES
from pipelines.resources import ValuemailResource
from valuemail.emails import measured_period
from valuemail.periods import Period

DATA_SUFFIXES = {".csv", ".ndjson", ".jsonl", ".json", ".parquet"}


def landing_snapshot(landing: Path) -> dict[str, str]:
    """``{relative path: "size:mtime_ns"}`` for every data file under ``landing``."""
    if not landing.exists():
        return {}
    snapshot = {}
    for path in sorted(landing.rglob("*")):
        if path.is_file() and path.suffix.lower() in DATA_SUFFIXES:
            stat = path.stat()
            snapshot[str(path.relative_to(landing))] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return snapshot


def s3_snapshot(uri: str, client=None) -> dict[str, str]:
    """``{s3://bucket/key: "size:etag"}`` for every data object under the prefix."""
    from valuemail.s3 import list_objects

    return {
        f"s3://{obj.bucket}/{obj.key}": f"{obj.size}:{obj.etag}"
        for obj in list_objects(uri, client=client)
        if Path(obj.key).suffix.lower() in DATA_SUFFIXES
    }


def new_files(previous: dict[str, str], current: dict[str, str]) -> list[str]:
    return [name for name, signature in current.items() if previous.get(name) != signature]


def build_landing_sensor(interval_s: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_files_sensor",
        job_name="ingest",
        minimum_interval_seconds=interval_s,
        description="Starts the ingest job when new or changed files appear in the landing folder or S3 prefix.",
    )
    def landing_files_sensor(context: dg.SensorEvaluationContext, valuemail: ValuemailResource):
        config = valuemail.load()
        current = landing_snapshot(config.landing_dir)
        if config.raw["paths"].get("landing_s3"):
            current.update(s3_snapshot(config.raw["paths"]["landing_s3"]))
        previous = json.loads(context.cursor) if context.cursor else {}
        changed = new_files(previous, current)
        if not changed:
            return dg.SkipReason(f"no new files ({len(current)} already seen)")
        run_key = hashlib.sha256(json.dumps({n: current[n] for n in changed}, sort_keys=True).encode()).hexdigest()[:16]
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=run_key, tags={"new_files": str(len(changed))})],
            cursor=json.dumps(current, sort_keys=True),
        )

    return landing_files_sensor


def delivery_selection(campaign: str) -> list[dg.AssetKey]:
    """What sending deferred or interrupted messages needs: decide, draw and render the newly eligible, send.

    Not ingest, metrics or segments: recomputing them after e-mails went out would change the
    figures behind what customers were sent (sent e-mails keep theirs: ``emails.figures``).
    """
    return [dg.AssetKey([campaign, name]) for name in ("eligibility", "charts", "emails", "sent_emails")]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def build_delivery_sensors(clock: Callable[[], datetime] = _utcnow) -> list[dg.SensorDefinition]:
    """One daily sensor per campaign: re-run the delivery of periods with deferred or interrupted messages.

    Periods whose send window has closed (``delivery/window.py``) are never requested: their
    deferred customers stay unsent.  ``clock`` (aware UTC) is injectable for tests.
    """
    sensors = []
    for campaign, job_name in JOB_NAMES.items():
        def evaluate(context: dg.SensorEvaluationContext, valuemail: ValuemailResource, campaign=campaign):
            now = clock()
            today = now.date()
            config = valuemail.load()
            if not config.warehouse_path.exists():
                return dg.SkipReason("no warehouse yet")
            with valuemail.warehouse(read_only=True) as con:
                # Each re-run keeps the cut-off its period was measured with: the deferred customers
                # of the wrapped sent on 1 December get the same 1 Jan - 30 Nov figures.
                deferred = [Period(campaign, date.fromisoformat(p)) for p in periods_with_deferred(con, campaign, today)]
                window = SendWindow.from_config(config)
                stale = [p for p in deferred if window.is_stale(p, now)]
                cutoffs = {p.key: measured_period(con, p).as_of for p in deferred if p not in stale}
            if not cutoffs:
                stale_note = f" within its send window ({len(stale)} stale, latest {stale[-1].key})" if stale else ""
                return dg.SkipReason(f"no {campaign} period has deferred customers{stale_note}")
            return [dg.RunRequest(run_key=f"deferred:{campaign}:{p}:{today}", partition_key=p,
                                  asset_selection=delivery_selection(campaign),
                                  tags={"campaign": campaign, "reason": "domain_cap_deferred", CUTOFF_TAG: cutoff.isoformat()})
                    for p, cutoff in cutoffs.items()]

        sensors.append(dg.sensor(
            name=f"deferred_{campaign}_sends", job_name=job_name, minimum_interval_seconds=3600,
            description=f"Once a day, re-runs the delivery assets of each {campaign} period that still has customers "
                        "deferred by the per-domain daily cap, messages left pending, or messages a crashed run left "
                        "in flight, so they are sent — not dropped, never twice; never a period whose send window "
                        "has closed.",
        )(evaluate))
    return sensors
