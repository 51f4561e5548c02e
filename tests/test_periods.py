from datetime import date, datetime, timezone

import pytest

from valuemail.periods import Period, last_complete_period, parse_period, period_start


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
