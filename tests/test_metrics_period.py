"""Hand-computed fixtures for the period metrics (metrics/period.py).

Every expected number below is worked out by hand from the default value model
(config/valuemail.toml): workflow_run 3 min, email_automated 2, report_generated 15,
document_signed 10 min + $1.50, subscription_audit 20 min, login = not a task.
Timestamps are UTC, as ingest stores them (ingest converts offsets; ``to_utc`` shows how).
"""

from datetime import date
from decimal import Decimal

import pytest

from metrics import testing as T
from metrics.period import COLUMN_NAMES, compute_period_metrics
from valuemail.periods import Period

WEEK = Period("weekly", date(2026, 11, 16))  # Mon 2026-11-16 .. Sun 2026-11-22


@pytest.fixture
def con():
    c = T.warehouse()
    yield c
    c.close()


@pytest.fixture
def cfg(tmp_path):
    return T.config(tmp_path)


def run(con, cfg, period=WEEK):
    return compute_period_metrics(con, cfg, period)


def row(con, customer="a", period=WEEK):
    return T.metrics_row(con, period.campaign, period.key, customer)


# -- period boundaries --------------------------------------------------------------------


def test_sunday_235959_belongs_to_the_old_week_and_monday_0000_to_the_new(con, cfg):
    T.add_customer(con, "a")
    T.add_event(con, "a", "2026-11-15 23:59:59")                       # previous week
    T.add_event(con, "a", "2026-11-16 00:00:00")                       # first instant of the week
    T.add_event(con, "a", "2026-11-22 23:59:59", "report_generated")   # last instant of the week
    T.add_event(con, "a", "2026-11-23 00:00:00")                       # next week
    run(con, cfg)
    r = row(con)
    assert r["tasks"] == 2 and r["events"] == 2
    assert r["minutes_saved"] == Decimal("18.00")                       # 3 + 15
    assert r["daily_tasks"] == [1, 0, 0, 0, 0, 0, 1]                    # Mon .. Sun
    assert r["active_days"] == 2
    assert r["prev_tasks"] == 1 and r["prev_minutes_saved"] == Decimal("3.00")
    assert r["tasks_change_pct"] == pytest.approx(100.0)
    assert r["lifetime_tasks"] == 3                                     # up to the period end only
    assert r["lifetime_minutes_saved"] == Decimal("21.00")
    assert r["streak_weeks"] == 2
    assert r["first_event_at"].isoformat() == "2026-11-16T00:00:00"
    assert r["busiest_day"] == date(2026, 11, 16) and r["busiest_day_tasks"] == 1  # tie -> earliest
    assert r["biggest_day"] == date(2026, 11, 22) and r["biggest_day_minutes"] == Decimal("15.00")

    run(con, cfg, WEEK.next())
    nxt = row(con, period=WEEK.next())
    assert nxt["tasks"] == 1 and nxt["prev_tasks"] == 2 and nxt["tasks_change_pct"] == pytest.approx(-50.0)


def test_inputs_with_time_zone_offsets_are_bucketed_by_their_utc_instant(con, cfg):
    # Ingest stores UTC; these are the UTC values it stores for offset inputs.
    assert T.to_utc("2026-11-16T01:30:00+02:00").isoformat() == "2026-11-15T23:30:00"  # Monday local, Sunday UTC
    assert T.to_utc("2026-11-15T22:30:00-02:00").isoformat() == "2026-11-16T00:30:00"  # Sunday local, Monday UTC
    T.add_customer(con, "a")
    T.add_event(con, "a", "2026-11-16T01:30:00+02:00")   # -> previous week
    T.add_event(con, "a", "2026-11-15T22:30:00-02:00")   # -> this week, Monday
    T.add_event(con, "a", "2026-11-22T23:30:00-05:00")   # -> next week (Mon 04:30 UTC)
    run(con, cfg)
    r = row(con)
    assert r["tasks"] == 1 and r["daily_tasks"] == [1, 0, 0, 0, 0, 0, 0] and r["prev_tasks"] == 1


def test_leap_day_in_month_week_and_year(con, cfg):
    T.add_customer(con, "a")
    T.add_event(con, "a", "2024-01-31 23:59:59")
    T.add_event(con, "a", "2024-02-01 00:00:00")
    T.add_event(con, "a", "2024-02-29 12:00:00", quantity=2)
    T.add_event(con, "a", "2024-03-01 00:00:00")
    T.add_event(con, "a", "2024-12-31 23:59:59", quantity=4)
    feb = Period("monthly", date(2024, 2, 1))
    run(con, cfg, feb)
    r = row(con, period=feb)
    assert len(r["daily_tasks"]) == 29
    assert r["daily_tasks"][0] == 1 and r["daily_tasks"][28] == 2 and sum(r["daily_tasks"]) == 3
    assert r["busiest_day"] == date(2024, 2, 29) and r["busiest_day_tasks"] == 2
    assert r["monthly_tasks"] is None

    leap_week = Period("weekly", date(2024, 2, 26))  # Mon 26 .. Sun 3 March
    run(con, cfg, leap_week)
    assert row(con, period=leap_week)["daily_tasks"] == [0, 0, 0, 2, 1, 0, 0]  # Thu 29 Feb, Fri 1 Mar

    year = Period("yearly", date(2024, 1, 1))
    run(con, cfg, year)
    y = row(con, period=year)
    assert y["daily_tasks"] is None
    assert y["monthly_tasks"] == [1, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 4]
    assert y["tasks"] == 9 and y["active_days"] == 5
    assert y["busiest_day"] == date(2024, 12, 31) and y["busiest_day_tasks"] == 4
    assert y["biggest_day"] == date(2024, 12, 31) and y["biggest_day_minutes"] == Decimal("12.00")
    assert y["prev_tasks"] is None


def test_empty_period_writes_no_rows_and_clears_an_earlier_run(con, cfg):
    T.add_customer(con, "a")
    T.add_event(con, "a", "2026-11-17 10:00:00")
    run(con, cfg)
    assert row(con) is not None
    con.execute("DELETE FROM events")
    summary = run(con, cfg)
    assert summary.rows == 0 and summary.tasks == 0
    assert con.execute("SELECT count(*) FROM customer_metrics").fetchone()[0] == 0


# -- what counts and how much ------------------------------------------------------------------


def test_events_before_sign_up_are_counted_and_flagged(con, cfg):
    T.add_customer(con, "a", signed_up_at="2026-11-18 09:00:00")
    T.add_event(con, "a", "2026-11-17 10:00:00")        # before the sign-up: still the customer's work
    T.add_event(con, "a", "2026-11-19 10:00:00")
    run(con, cfg)
    r = row(con)
    assert r["tasks"] == 2 and r["first_event_before_signup"] is True


def test_quantity_counts_tasks_and_multiplies_default_values(con, cfg):
    T.add_customer(con, "a")
    T.add_event(con, "a", "2026-11-17 10:00:00", "email_automated", quantity=7)   # 7 tasks x 2 min
    T.add_event(con, "a", "2026-11-17 11:00:00", "document_signed", quantity=3)   # 3 x (10 min + $1.50)
    T.add_event(con, "a", "2026-11-17 12:00:00", "workflow_run", quantity=0)      # an event, no task
    run(con, cfg)
    r = row(con)
    assert (r["tasks"], r["events"], r["minutes_saved"], r["money_saved"]) == (10, 3, Decimal("44.00"), Decimal("4.50"))


def test_measured_values_win_over_the_defaults(con, cfg):
    T.add_customer(con, "a")
    T.add_event(con, "a", "2026-11-17 10:00:00", "workflow_run", quantity=2, duration_saved_s=90)  # 1.5 min, not 6
    T.add_event(con, "a", "2026-11-17 11:00:00", "document_signed", amount_saved="3.00", currency="USD")  # $3, not 1.50
    T.add_event(con, "a", "2026-11-17 12:00:00", "report_generated")                # default 15 min
    T.add_event(con, "a", "2026-11-17 13:00:00", "document_signed", quantity=2)     # default 20 min, $3.00
    run(con, cfg)
    r = row(con)
    assert r["tasks"] == 6
    assert r["minutes_saved"] == Decimal("46.50")   # 1.5 + 10 + 15 + 20
    assert r["money_saved"] == Decimal("6.00") and r["money_direct"] == Decimal("6.00")
    assert r["measured_events"] == 2


def test_minutes_are_rounded_once_half_up(con, cfg):
    T.add_customer(con, "a")
    T.add_customer(con, "b")
    T.add_event(con, "a", "2026-11-17 10:00:00", duration_saved_s=0.3)    # 0.005 min -> 0.01
    T.add_event(con, "b", "2026-11-17 10:00:00", duration_saved_s=0.29)   # 0.00483 min -> 0.00
    T.add_event(con, "b", "2026-11-17 10:00:01", duration_saved_s=0.29)   # both together 0.00967 -> 0.01
    run(con, cfg)
    assert row(con, "a")["minutes_saved"] == Decimal("0.01")
    assert row(con, "b")["minutes_saved"] == Decimal("0.01")


def test_money_never_mixes_currencies(con, cfg):
    T.add_customer(con, "a", currency="EUR")
    T.add_event(con, "a", "2026-11-17 10:00:00", "document_signed")                                   # $1.50 default
    T.add_event(con, "a", "2026-11-17 10:00:00", "subscription_audit", amount_saved="12.345", currency="eur")
    T.add_event(con, "a", "2026-11-17 11:00:00", "subscription_audit", amount_saved="5.00", currency="GBP")
    T.add_event(con, "a", "2026-11-17 12:00:00", "subscription_audit", amount_saved="2.004", currency="GBP")
    T.add_event(con, "a", "2026-11-17 13:00:00", "mystery_feature", amount_saved="100", currency="EUR", known=False)
    run(con, cfg)
    r = row(con)
    assert r["currency"] == "EUR"
    assert r["money_saved"] == Decimal("12.35")                         # 12.345 half up; unknown type not valued
    import json
    assert json.loads(r["money_other"]) == [{"currency": "GBP", "amount": "7.00"}, {"currency": "USD", "amount": "1.50"}]


def test_hourly_rate_prices_saved_time_in_the_customers_currency(con, tmp_path):
    cfg = T.config(tmp_path)
    T.add_customer(con, "a", hourly_rate=60)
    T.add_customer(con, "b", hourly_rate="37.50", currency="EUR")
    T.add_event(con, "a", "2026-11-17 10:00:00", quantity=10)                       # 30 min
    T.add_event(con, "a", "2026-11-17 11:00:00", "document_signed")                 # 10 min + $1.50
    T.add_event(con, "b", "2026-11-17 10:00:00", duration_saved_s=100)              # 100 s at 37.50/h = 1.0417
    run(con, cfg)
    a, b = row(con, "a"), row(con, "b")
    assert (a["minutes_saved"], a["money_from_time"], a["money_direct"], a["money_saved"]) == (
        Decimal("40.00"), Decimal("40.00"), Decimal("1.50"), Decimal("41.50"))
    assert (b["minutes_saved"], b["money_from_time"], b["money_saved"], b["currency"]) == (
        Decimal("1.67"), Decimal("1.04"), Decimal("1.04"), "EUR")

    off = T.config(tmp_path, value_model={"price_time_at_hourly_rate": False})
    run(con, off)
    a = row(con, "a")
    assert a["money_from_time"] is None and a["money_saved"] == Decimal("1.50") and a["hourly_rate"] is None


def test_unknown_event_types_are_counted_not_valued(con, cfg):
    T.add_customer(con, "a")
    T.add_event(con, "a", "2026-11-17 10:00:00", "mystery_feature", quantity=5, duration_saved_s=600, known=False)
    T.add_event(con, "a", "2026-11-18 10:00:00", "login")
    summary = run(con, cfg)
    r = row(con)
    assert (r["events"], r["unknown_events"], r["tasks"], r["minutes_saved"]) == (2, 1, 0, Decimal("0.00"))
    assert r["top_features"] == "[]" and r["busiest_day"] is None and r["active_days"] == 2
    assert summary.unknown_event_types == {"mystery_feature": 1}


# -- highlights ----------------------------------------------------------------------------


def test_milestones_crossed_in_the_period(con, tmp_path):
    cfg = T.config(tmp_path)
    T.add_customer(con, "a")
    T.add_customer(con, "b")
    T.add_customer(con, "c")
    T.add_event(con, "a", "2026-10-01 10:00:00", quantity=95)
    T.add_event(con, "a", "2026-11-17 10:00:00", quantity=10)     # 95 -> 105 crosses 100
    T.add_event(con, "b", "2026-10-01 10:00:00", quantity=90)
    T.add_event(con, "b", "2026-11-17 10:00:00", quantity=10)     # 90 -> 100 reaches 100 exactly
    T.add_event(con, "c", "2026-10-01 10:00:00", quantity=100)
    T.add_event(con, "c", "2026-11-17 10:00:00", quantity=5)      # 100 -> 105: already past
    run(con, cfg)
    assert (row(con, "a")["milestones"], row(con, "a")["next_milestone"]) == ([100], 1000)
    assert row(con, "b")["milestones"] == [100]
    assert (row(con, "c")["milestones"], row(con, "c")["next_milestone"]) == ([], 1000)

    custom = T.config(tmp_path, metrics={"milestones": [10, 50, 104, 2000]})
    run(con, custom)
    assert row(con, "a")["milestones"] == [104] and row(con, "a")["next_milestone"] == 2000
    assert row(con, "c")["milestones"] == [104]


def test_streaks_count_consecutive_active_weeks(con, cfg):
    T.add_customer(con, "a")
    T.add_customer(con, "gap")
    T.add_customer(con, "long")
    T.add_customer(con, "exact64")
    for w in range(3):
        T.add_event(con, "a", f"2026-11-{16 - 7 * w:02d} 10:00:00")
    T.add_event(con, "gap", "2026-11-02 10:00:00")
    T.add_event(con, "gap", "2026-11-18 10:00:00")
    from datetime import datetime, timedelta
    for w in range(70):
        T.add_event(con, "long", datetime(2026, 11, 22, 23) - timedelta(weeks=w))
    for w in range(64):
        T.add_event(con, "exact64", datetime(2026, 11, 20) - timedelta(weeks=w))
    T.add_event(con, "exact64", datetime(2026, 11, 20) - timedelta(weeks=65))   # gap at week 65
    run(con, cfg)
    assert row(con, "a")["streak_weeks"] == 3
    assert row(con, "gap")["streak_weeks"] == 1
    assert row(con, "long")["streak_weeks"] == 70       # spans two 64-week bit chunks
    assert row(con, "exact64")["streak_weeks"] == 64


def test_monthly_streak_ignores_an_unfinished_last_week_without_activity(con, cfg):
    # November 2026 ends on Monday 30th: that week has one day in the period.
    T.add_customer(con, "a")
    T.add_customer(con, "b")
    for d in (2, 9, 16, 23):
        T.add_event(con, "a", f"2026-11-{d:02d} 10:00:00")
        T.add_event(con, "b", f"2026-11-{d:02d} 10:00:00")
    T.add_event(con, "b", "2026-11-30 10:00:00")
    month = Period("monthly", date(2026, 11, 1))
    run(con, cfg, month)
    assert row(con, "a", month)["streak_weeks"] == 4
    assert row(con, "b", month)["streak_weeks"] == 5
    assert row(con, "a", month)["active_weeks"] == 4 and row(con, "a", month)["longest_streak_weeks"] == 4


def test_busiest_day_and_top_features(con, cfg):
    import json
    T.add_customer(con, "a")
    T.add_event(con, "a", "2026-10-01 10:00:00", "workflow_run")           # used before: no first use
    for _ in range(5):
        T.add_event(con, "a", "2026-11-18 10:00:00", "workflow_run")
    T.add_event(con, "a", "2026-11-17 09:00:00", "report_generated", quantity=5)
    T.add_event(con, "a", "2026-11-19 08:00:00", "email_automated", quantity=2)
    T.add_event(con, "a", "2026-11-20 08:00:00", "data_sync")
    T.add_event(con, "a", "2026-11-20 09:00:00", "login")
    run(con, cfg)
    r = row(con)
    # 5 on Tue (report) and 5 on Wed (workflow): the earlier day wins the tie
    assert r["busiest_day"] == date(2026, 11, 17) and r["busiest_day_tasks"] == 5
    assert r["biggest_day"] == date(2026, 11, 17) and r["biggest_day_minutes"] == Decimal("75.00")
    assert json.loads(r["top_features"]) == [
        {"event_type": "report_generated", "feature": "Reports", "tasks": 5},
        {"event_type": "workflow_run", "feature": "Automated workflows", "tasks": 5},
        {"event_type": "email_automated", "feature": "Automated emails", "tasks": 2},
    ]
    assert r["features_used"] == 4
    assert json.loads(r["first_uses"]) == [
        {"event_type": "report_generated", "feature": "Reports", "first_used_at": "2026-11-17T09:00:00Z"},
        {"event_type": "email_automated", "feature": "Automated emails", "first_used_at": "2026-11-19T08:00:00Z"},
        {"event_type": "data_sync", "feature": "Data sync", "first_used_at": "2026-11-20T08:00:00Z"},
    ]


def test_yearly_wrapped_figures(con, cfg):
    T.add_customer(con, "a")
    T.add_event(con, "a", "2025-06-01 10:00:00", quantity=4)
    T.add_event(con, "a", "2026-01-05 10:00:00")              # week 2 of 2026
    T.add_event(con, "a", "2026-01-12 10:00:00")              # week 3
    T.add_event(con, "a", "2026-01-19 10:00:00")              # week 4
    T.add_event(con, "a", "2026-03-02 10:00:00", "report_generated", quantity=3)
    T.add_event(con, "a", "2026-12-31 10:00:00")
    year = Period("yearly", date(2026, 1, 1))
    run(con, cfg, year)
    r = row(con, period=year)
    assert r["monthly_tasks"] == [3, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert r["active_weeks"] == 5 and r["longest_streak_weeks"] == 3
    assert r["prev_tasks"] == 4 and r["tasks_change_pct"] == pytest.approx(75.0)
    assert r["busiest_day"] == date(2026, 3, 2) and r["biggest_day_minutes"] == Decimal("45.00")
    assert r["streak_weeks"] == 1                              # only the last week of 2026


def test_a_year_to_date_counts_up_to_the_cutoff_and_compares_with_last_year_to_the_same_day(con, cfg):
    T.add_customer(con, "a")
    T.add_event(con, "a", "2025-06-01 10:00:00", quantity=4)
    T.add_event(con, "a", "2025-12-15 10:00:00", quantity=6)      # after 1 Dec last year: not compared
    T.add_event(con, "a", "2025-12-10 10:00:00", "document_signed", amount_saved=7, currency="USD")  # idem
    T.add_event(con, "a", "2026-03-02 10:00:00", "report_generated", quantity=3)
    T.add_event(con, "a", "2026-11-30 23:59:59")                  # the last day measured
    T.add_event(con, "a", "2026-12-01 00:00:00", quantity=50)     # on the cut-off day: not measured
    year_to_date = Period("yearly", date(2026, 1, 1)).until(date(2026, 12, 1))
    run(con, cfg, year_to_date)
    r = row(con, period=year_to_date)
    assert r["tasks"] == 4 and r["monthly_tasks"] == [0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0]
    assert r["prev_tasks"] == 4 and r["tasks_change_pct"] == pytest.approx(0.0)
    assert r["prev_money_saved"] == Decimal("0.00")
    assert r["active_days"] == 2 and r["streak_weeks"] == 1     # the week of 30 Nov is the last one measured


# -- idempotency and backfills ---------------------------------------------------------------


def _rows(con, period):
    return con.execute(
        f"SELECT {', '.join(COLUMN_NAMES)} FROM customer_metrics WHERE campaign = ? AND period = ? ORDER BY customer_id",
        [period.campaign, period.start],
    ).fetchall()


def _fixture(con):
    from datetime import datetime, timedelta
    for i, plan in enumerate(["pro", "pro", "free", "team"]):
        T.add_customer(con, f"c{i}", plan=plan, currency=["USD", "EUR", None, "HUF"][i])
    types = ["workflow_run", "document_signed", "login", "subscription_audit", "report_generated"]
    for n in range(120):
        T.add_event(con, f"c{n % 4}", datetime(2026, 10, 1) + timedelta(hours=13 * n), types[n % 5],
                    quantity=1 + n % 3, amount_saved="2.50" if n % 5 == 3 else None,
                    currency=["EUR", "USD"][n % 2] if n % 5 == 3 else None)


def test_rerunning_a_partition_gives_identical_rows(con, cfg):
    _fixture(con)
    run(con, cfg)
    first = _rows(con, WEEK)
    run(con, cfg)
    assert _rows(con, WEEK) == first and len(first) == 4


def test_backfilling_a_range_equals_materialising_each_partition(cfg):
    weeks = [Period("weekly", date(2026, 10, 5)).next(i) for i in range(7)]
    a, b = T.warehouse(), T.warehouse()
    _fixture(a)
    _fixture(b)                           # the same inputs in a second warehouse
    for p in weeks:                       # a backfill, oldest first
        compute_period_metrics(a, cfg, p)
    for p in reversed(weeks):             # one partition at a time, any order, each twice
        compute_period_metrics(b, cfg, p)
        compute_period_metrics(b, cfg, p)
    for p in weeks:
        assert _rows(a, p) == _rows(b, p)
    assert sum(len(_rows(a, p)) for p in weeks) > 10


def test_other_partitions_are_left_alone(con, cfg):
    _fixture(con)
    run(con, cfg, WEEK.previous())
    before = _rows(con, WEEK.previous())
    run(con, cfg)
    assert _rows(con, WEEK.previous()) == before


def test_an_older_table_with_a_primary_key_is_migrated(con, cfg):
    con.execute("CREATE TABLE customer_metrics (campaign VARCHAR NOT NULL, period DATE NOT NULL, customer_id VARCHAR NOT NULL, "
                "value_model_version VARCHAR NOT NULL, tasks BIGINT NOT NULL, minutes_saved DECIMAL(18,2) NOT NULL, "
                "money_saved DECIMAL(18,2) NOT NULL, currency VARCHAR NOT NULL, events BIGINT NOT NULL, "
                "active_days INTEGER NOT NULL, daily_tasks BIGINT[] NOT NULL, PRIMARY KEY (campaign, period, customer_id))")
    con.execute("INSERT INTO customer_metrics VALUES ('weekly', '2026-11-09', 'old', 'v0', 1, 1, 0, 'USD', 1, 1, [1])")
    T.add_customer(con, "a")
    T.add_event(con, "a", "2026-11-17 10:00:00")
    run(con, cfg, Period("yearly", date(2026, 1, 1)))        # NULL daily_tasks must be accepted now
    assert row(con, period=Period("yearly", date(2026, 1, 1)))["tasks"] == 1
    assert con.execute("SELECT tasks FROM customer_metrics WHERE customer_id = 'old'").fetchone() == (1,)


def test_the_connection_settings_are_restored(con, cfg):
    before = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    T.add_customer(con, "a")
    T.add_event(con, "a", "2026-11-17 10:00:00")
    run(con, cfg)
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0] == before
    temps = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name LIKE '\\_m\\_%' ESCAPE '\\'").fetchone()[0]
    assert temps <= 1  # only the value-model helper table may stay


def test_a_failure_leaves_the_previous_rows_in_place(con, cfg, monkeypatch):
    T.add_customer(con, "a")
    T.add_event(con, "a", "2026-11-17 10:00:00")
    run(con, cfg)
    before = _rows(con, WEEK)
    from metrics import peers
    monkeypatch.setattr(peers, "write_distribution", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        run(con, cfg)
    assert _rows(con, WEEK) == before


def test_duckdb_types_of_the_contract_columns(con, cfg):
    T.add_customer(con, "a")
    T.add_event(con, "a", "2026-11-17 10:00:00")
    run(con, cfg)
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'customer_metrics'").fetchall())
    assert types["tasks"] == "BIGINT" and types["minutes_saved"] == "DECIMAL(18,2)"
    assert types["money_saved"] == "DECIMAL(18,2)" and types["daily_tasks"] == "BIGINT[]"
    assert types["top_features"] == "JSON" and types["money_other"] == "JSON" and types["milestones"] == "BIGINT[]"
    assert types["tasks_percentile"] == "DOUBLE" and types["peer_cohort_size"] == "INTEGER"


def test_metrics_package_does_not_import_dagster():
    import subprocess
    import sys
    code = ("import sys, metrics.period, metrics.segments, metrics.checks, metrics.report, metrics.peers; "
            "sys.exit(1 if 'dagster' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
