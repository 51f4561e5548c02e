"""The Dagster definitions load, validate, and have the shape analysts rely on."""

from datetime import datetime, timezone

import dagster as dg
import pytest

from pipelines.definitions import defs
from pipelines.jobs import CUTOFF_TAG
from pipelines.partitions import PARTITIONS
from pipelines.schedules import build_schedules, yearly_partition_for
from valuemail.config import load_config
from valuemail.periods import available_periods, first_day


def test_definitions_load_and_validate():
    dg.Definitions.validate_loadable(defs)


def test_one_job_per_campaign_over_its_partitions():
    for name, first_key in (("weekly_value_email", "2024-01-01"), ("monthly_value_email", "2024-01-01"),
                            ("yearly_wrapped", "2024-01-01")):
        job = defs.resolve_job_def(name)
        assert job.partitions_def is not None
        assert job.partitions_def.get_first_partition_key() == first_key


def test_the_partitions_are_the_periods_a_run_may_cover():
    for now in (datetime(2026, 12, 3, 9, 30, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc)):
        for campaign, partitions in PARTITIONS.items():
            keys = partitions.get_partition_keys(current_time=now)
            first, last = available_periods(campaign, first_day(load_config()), now)
            assert (keys[0], keys[-1]) == (first.key, last.key)


def test_every_asset_is_documented_grouped_and_owned():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, f"{key.to_user_string()} has no docstring"
        assert node.group_name and node.group_name != "default", key
        assert node.owners, key
        assert node.kinds, key


def _tick(schedule_name: str, when: datetime) -> dg.RunRequest:
    # No instance: an instance closed after the tick would stay registered as Dagster's
    # process-wide definitions-load context and break later materialisations in this worker.
    schedule = defs.resolve_schedule_def(schedule_name)
    context = dg.build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
    result = schedule.evaluate_tick(context)
    assert result.run_requests, result.skip_message
    return result.run_requests[0]


def test_weekly_schedule_runs_monday_for_the_week_just_ended():
    request = _tick("weekly_value_email_schedule", datetime(2026, 11, 23, 6, 0, tzinfo=timezone.utc))
    assert request.partition_key == "2026-11-16"
    assert request.tags[CUTOFF_TAG] == "2026-11-23"
    assert request.run_key == "weekly:2026-11-16"


def test_monthly_schedule_runs_on_the_first_for_the_month_just_ended():
    request = _tick("monthly_value_email_schedule", datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc))
    assert request.partition_key == "2026-11-01"


def test_yearly_wrapped_defaults_to_early_december_year_to_date():
    schedule = defs.resolve_schedule_def("yearly_wrapped_schedule")
    assert schedule.cron_schedule == "0 6 1 12 *"
    request = _tick("yearly_wrapped_schedule", datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc))
    assert request.partition_key == "2026-01-01"
    assert request.tags[CUTOFF_TAG] == "2026-12-01"  # 1 Jan - 30 Nov, even when the run starts late
    assert "2026-01-01" in defs.resolve_job_def("yearly_wrapped").partitions_def.get_partition_keys(
        current_time=datetime(2026, 12, 1, 6, tzinfo=timezone.utc))


def test_yearly_wrapped_can_cover_the_full_previous_year(tmp_path):
    config = load_config(home=tmp_path, overrides={"schedules": {"yearly_on": "01-02", "yearly_covers": "previous_year"}})
    schedule = {s.name: s for s in build_schedules(config)}["yearly_wrapped_schedule"]
    assert schedule.cron_schedule == "0 6 2 1 *"
    assert yearly_partition_for(datetime(2027, 1, 2).date(), "previous_year") == "2026-01-01"
    with pytest.raises(ValueError, match="yearly_covers"):
        yearly_partition_for(datetime(2027, 1, 2).date(), "fortnight")
