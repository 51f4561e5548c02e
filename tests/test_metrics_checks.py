"""The blocking data-quality checks (metrics/checks.py) pass on good rows and catch bad ones."""

from datetime import date

import pytest

from metrics import checks
from metrics import testing as T
from metrics.period import compute_period_metrics
from metrics.segments import compute_segments
from valuemail.periods import Period

WEEK = Period("weekly", date(2026, 11, 16))


@pytest.fixture
def cfg(tmp_path):
    return T.config(tmp_path, segments={"peer_min_cohort": 2})


@pytest.fixture
def con(cfg):
    c = T.warehouse()
    T.add_customer(c, "a", hourly_rate=50)
    T.add_customer(c, "b", currency="EUR")
    T.add_customer(c, "c")
    T.add_event(c, "a", "2026-11-16 00:00:00", quantity=3, duration_saved_s=61.7)
    T.add_event(c, "a", "2026-11-18 00:00:00", "document_signed", quantity=2)
    T.add_event(c, "b", "2026-11-19 10:00:00", "subscription_audit", amount_saved="9.995", currency="EUR")
    T.add_event(c, "b", "2026-11-19 11:00:00", "document_signed")
    T.add_event(c, "b", "2026-11-20 11:00:00", "mystery_feature", known=False)
    T.add_event(c, "c", "2026-11-21 11:00:00", "email_automated", quantity=4)
    compute_period_metrics(c, cfg, WEEK)
    yield c
    c.close()


def _all(con, cfg):
    return {
        "no_negative_values": checks.check_no_negative_values(con, WEEK),
        "every_active_customer_has_row": checks.check_every_active_customer_has_row(con, WEEK),
        "totals_reconcile": checks.check_totals_reconcile(con, cfg, WEEK),
        "peer_privacy": checks.check_peer_privacy(con, cfg, WEEK),
    }


def test_all_checks_pass_on_computed_rows(con, cfg):
    outcomes = _all(con, cfg)
    assert all(o.passed for o in outcomes.values()), {k: o.description for k, o in outcomes.items()}
    meta = outcomes["totals_reconcile"].metadata
    assert meta["tasks"] == 11 and meta["events"] == 6 and meta["unknown_events"] == 1   # a 3+2, b 1+1, c 4
    assert meta["money_raw"] == {"EUR": "9.9950", "USD": "4.5000"}


def test_negative_values_are_caught(con, cfg):
    con.execute("UPDATE customer_metrics SET minutes_saved = -1 WHERE customer_id = 'a'")
    assert not checks.check_no_negative_values(con, WEEK).passed


def test_negative_raw_inputs_are_caught(con, cfg):
    T.add_event(con, "a", "2026-11-17 00:00:00", duration_saved_s=-30)
    assert checks.check_no_negative_values(con, WEEK).metadata["raw_events_with_negative_values"] == 1


def test_missing_extra_and_duplicate_rows_are_caught(con, cfg):
    con.execute("DELETE FROM customer_metrics WHERE customer_id = 'c'")
    out = checks.check_every_active_customer_has_row(con, WEEK)
    assert not out.passed and out.metadata["missing_rows"] == 1
    con.execute("INSERT INTO customer_metrics SELECT * REPLACE ('zzz' AS customer_id) FROM customer_metrics WHERE customer_id = 'a'")
    con.execute("INSERT INTO customer_metrics SELECT * FROM customer_metrics WHERE customer_id = 'a'")
    out = checks.check_every_active_customer_has_row(con, WEEK)
    assert out.metadata["rows_without_events"] == 1 and out.metadata["duplicate_rows"] == 1


def test_totals_that_do_not_reconcile_are_caught(con, cfg):
    con.execute("UPDATE customer_metrics SET tasks = tasks + 1 WHERE customer_id = 'c'")
    assert "tasks" in checks.check_totals_reconcile(con, cfg, WEEK).description
    con.execute("UPDATE customer_metrics SET tasks = tasks - 1, minutes_saved = minutes_saved + 0.02 WHERE customer_id = 'c'")
    assert "minutes" in checks.check_totals_reconcile(con, cfg, WEEK).description
    con.execute("UPDATE customer_metrics SET minutes_saved = minutes_saved - 0.02, money_direct = money_direct + 0.01 "
                "WHERE customer_id = 'b'")
    assert "money EUR" in checks.check_totals_reconcile(con, cfg, WEEK).description
    con.execute("UPDATE customer_metrics SET money_direct = money_direct - 0.01 WHERE customer_id = 'b'")
    assert checks.check_totals_reconcile(con, cfg, WEEK).passed


def test_peer_figures_for_small_cohorts_are_caught(con, cfg):
    con.execute("UPDATE customer_metrics SET tasks_percentile = 50, peer_cohort_size = 1 WHERE customer_id = 'a'")
    assert not checks.check_peer_privacy(con, cfg, WEEK).passed
    con.execute("UPDATE customer_metrics SET tasks_percentile = NULL, peer_cohort_size = 3 WHERE customer_id = 'a'")
    con.execute("INSERT INTO peer_distribution VALUES ('weekly', '2026-11-16', 'tiny', 'tasks', 1, [0, 1], [1])")
    assert checks.check_peer_privacy(con, cfg, WEEK).metadata["distributions_below_k"] == 1


def test_segments_coverage_check(con, cfg):
    assert not checks.check_segments_cover_customers(con, WEEK).passed      # no table yet
    compute_segments(con, cfg, WEEK)
    assert checks.check_segments_cover_customers(con, WEEK).passed
    con.execute("DELETE FROM segments WHERE customer_id = 'a'")
    assert checks.check_segments_cover_customers(con, WEEK).metadata["missing_rows"] == 1
