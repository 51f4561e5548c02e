"""Schedules: weekly on Monday morning, monthly on the 1st, the yearly wrapped on a configured day."""

from __future__ import annotations

from datetime import date, timezone

import dagster as dg

from pipelines.jobs import CUTOFF_TAG, JOB_NAMES
from valuemail.config import Config
from valuemail.periods import last_complete_period, period_start


def _period_schedule(campaign: str, cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{JOB_NAMES[campaign]}_schedule",
        cron_schedule=cron,
        job_name=JOB_NAMES[campaign],
        execution_timezone="UTC",
        description=f"Runs the {campaign} value e-mail for the {campaign} period that has just ended.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        scheduled = context.scheduled_execution_time.astimezone(timezone.utc)
        period = last_complete_period(campaign, scheduled)
        # run_key: a tick evaluated twice (daemon restart) never starts a second run for the period.
        return dg.RunRequest(run_key=f"{campaign}:{period.key}", partition_key=period.key,
                             tags={"campaign": campaign, CUTOFF_TAG: scheduled.date().isoformat()})

    return _schedule


def yearly_partition_for(run_day: date, covers: str) -> str:
    """The yearly partition a wrapped sent on ``run_day`` covers."""
    if covers == "year_to_date":
        return period_start("yearly", run_day).isoformat()
    if covers == "previous_year":
        return date(run_day.year - 1, 1, 1).isoformat()
    raise ValueError(f"schedules.yearly_covers must be year_to_date or previous_year, not {covers!r}")


def _yearly_schedule(config: Config) -> dg.ScheduleDefinition:
    cfg = config.section("schedules")
    month, day = (int(x) for x in str(cfg["yearly_on"]).split("-"))
    covers = str(cfg["yearly_covers"])
    yearly_partition_for(date(2000, 1, 1), covers)  # validate at load time

    @dg.schedule(
        name="yearly_wrapped_schedule",
        cron_schedule=f"0 {int(cfg['hour'])} {day} {month} *",
        job_name=JOB_NAMES["yearly"],
        execution_timezone="UTC",
        description=f"The yearly wrapped, on {month:02d}-{day:02d}, covering the {covers.replace('_', ' ')}.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        run_day = context.scheduled_execution_time.astimezone(timezone.utc).date()
        key = yearly_partition_for(run_day, covers)
        # The cut-off is the scheduled day, not the day the run happens to execute: the wrapped
        # sent on 1 December covers 1 January - 30 November even when it runs late.
        return dg.RunRequest(run_key=f"yearly:{key}", partition_key=key,
                             tags={"campaign": "yearly", CUTOFF_TAG: run_day.isoformat()})

    return _schedule


def build_schedules(config: Config) -> list[dg.ScheduleDefinition]:
    cfg = config.section("schedules")
    return [
        _period_schedule("weekly", str(cfg["weekly"])),
        _period_schedule("monthly", str(cfg["monthly"])),
        _yearly_schedule(config),
    ]

