from datetime import date, datetime, timezone

import pytest

from valuemail.config import ConfigError, load_config
from valuemail.periods import (Period, available_periods, data_cutoff, first_day, last_complete_period, parse_period,
                               period_start, resolve_period)


def test_weeks_start_on_monday():
    assert period_start("weekly", date(2026, 11, 22)) == date(2026, 11, 16)  # Sunday -> that week's Monday
    assert period_start("weekly", date(2026, 11, 23)) == date(2026, 11, 23)  # Monday


def test_period_bounds_and_navigation():
    week = Period("weekly", date(2026, 11, 16))
    assert week.end == date(2026, 11, 23)
    assert week.previous().key == "2026-11-09"
    month = Period("monthly", date(2026, 12, 1))
    assert month.end == date(2027, 1, 1)
    assert month.previous(12).key == "2025-12-01"
    year = Period("yearly", date(2024, 1, 1))
    assert year.end == date(2025, 1, 1)


def test_leap_february_has_29_days():
    feb = Period("monthly", date(2024, 2, 1))
    assert (feb.end - feb.start).days == 29


def test_rejects_a_day_that_does_not_start_a_period():
    with pytest.raises(ValueError, match="not the first day"):
        Period("weekly", date(2026, 11, 17))
    with pytest.raises(ValueError, match="unknown campaign"):
        Period("daily", date(2026, 11, 16))


def test_parse_period_forms():
    assert parse_period("monthly", "2026-11").key == "2026-11-01"
    assert parse_period("yearly", "2026").key == "2026-01-01"
    with pytest.raises(ValueError, match="not a date"):
        parse_period("weekly", "last week")


def test_last_complete_period_is_the_one_just_ended():
    monday_morning = datetime(2026, 11, 23, 6, 0, tzinfo=timezone.utc)
    assert last_complete_period("weekly", monday_morning).key == "2026-11-16"
    assert last_complete_period("monthly", monday_morning).key == "2026-10-01"
    assert last_complete_period("yearly", monday_morning).key == "2025-01-01"


def test_a_period_not_ended_by_the_cutoff_is_measured_up_to_it():
    year = Period("yearly", date(2026, 1, 1))
    to_date = year.until(date(2026, 12, 1))  # the wrapped scheduled on 1 December
    assert to_date.as_of == date(2026, 12, 1) and to_date.end == date(2027, 1, 1)
    assert to_date == year and to_date.key == "2026-01-01"  # the same partition
    assert to_date.previous_as_of == date(2025, 12, 1)  # compared with last year to the same day
    assert year.until(date(2027, 2, 1)).as_of == date(2027, 1, 1)  # ended before the cut-off: its end
    assert year.as_of == year.end and year.previous_as_of == date(2026, 1, 1)
    assert Period("monthly", date(2026, 3, 1)).until(date(2026, 3, 31)).previous_as_of == date(2026, 3, 1)  # all of Feb
    assert Period("yearly", date(2029, 1, 1)).until(date(2029, 3, 1)).previous_as_of == date(2028, 2, 29)
    with pytest.raises(ValueError, match="had not begun by the cut-off 2026-01-01"):
        year.until(date(2026, 1, 1))


def test_the_cutoff_is_as_of_or_today_and_never_in_the_future():
    now = datetime(2026, 12, 3, 9, 30, tzinfo=timezone.utc)
    assert data_cutoff(None, now) == date(2026, 12, 3)
    assert data_cutoff(date(2026, 12, 1), now) == date(2026, 12, 1)
    with pytest.raises(ValueError, match="--as-of 2026-12-04 is after today"):
        data_cutoff(date(2026, 12, 4), now)


NOW = datetime(2026, 12, 3, 9, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("campaign, text", [("weekly", "9999-12-27"), ("weekly", "0001-01-01"), ("monthly", "2023-12-01"),
                                            ("yearly", "1997-01-01"), ("yearly", "2027-01-01"), ("weekly", "2026-11-30")])
def test_a_period_outside_the_partitions_names_the_range_and_the_key(config, campaign, text):
    with pytest.raises(ValueError) as info:
        resolve_period(config, campaign, text, NOW)
    message = str(info.value)
    assert "\n" not in message and f"{campaign} period {text}" in message
    assert "from 2024-01-01 to" in message and "[schedules] first_period" in message


def test_the_first_period_comes_from_the_configuration(tmp_path):
    config = load_config(home=tmp_path, overrides={"schedules": {"first_period": "1997-01-01"}})
    assert resolve_period(config, "yearly", "1997-01-01", NOW).key == "1997-01-01"
    assert resolve_period(config, "weekly", "1996-12-30", NOW).key == "1996-12-30"  # the week holding 1 Jan 1997
    assert resolve_period(config, "yearly", "2026-01-01", NOW).key == "2026-01-01"  # the year to date
    assert resolve_period(config, "weekly", None, NOW).key == "2026-11-23"
    assert available_periods("monthly", first_day(config), NOW) == (Period("monthly", date(1997, 1, 1)),
                                                                   Period("monthly", date(2026, 11, 1)))
    with pytest.raises(ConfigError, match="schedules.first_period: '2024-13-01' is not a date"):
        first_day(load_config(home=tmp_path, overrides={"schedules": {"first_period": "2024-13-01"}}))
    for bad in ("1 Jan 1997", "1899-12-31"):
        with pytest.raises(ConfigError, match=r"\[schedules\] first_period: got .*from 1900-01-01 on"):
            load_config(home=tmp_path, overrides={"schedules": {"first_period": bad}})
