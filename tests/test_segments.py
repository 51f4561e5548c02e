"""Lifecycle stages and engagement tiers (metrics/segments.py), hand-computed.

The week 2026-11-16 ends at as_of = 2026-11-23 00:00 UTC; default thresholds: new 30 days,
active 30, lapsed 90, engagement look-back 90.
"""

from datetime import date, datetime, timedelta

import pytest

from metrics import testing as T
from metrics.segments import COLUMN_NAMES, compute_segments, same_period_last_year
from valuemail.periods import Period

WEEK = Period("weekly", date(2026, 11, 16))
AS_OF = datetime(2026, 11, 23)


@pytest.fixture
def con():
    c = T.warehouse()
    yield c
    c.close()


@pytest.fixture
def cfg(tmp_path):
    return T.config(tmp_path)


def seg(con, customer, period=WEEK):
    rows = T.rows(con, "SELECT * FROM segments WHERE campaign = ? AND period = ? AND customer_id = ?",
                  [period.campaign, period.key, customer])
    return rows[0] if rows else None


def test_stage_boundaries(con, cfg):
    long_ago = "2020-01-01"
    T.add_customer(con, "prospect", signed_up_at="2026-01-01")
    T.add_customer(con, "prospect_new", signed_up_at=AS_OF - timedelta(days=2))    # new sign-up, never active
    T.add_customer(con, "new", signed_up_at=AS_OF - timedelta(days=30))            # exactly 30 days: still new
    T.add_event(con, "new", AS_OF - timedelta(days=29))
    T.add_customer(con, "not_new", signed_up_at=AS_OF - timedelta(days=30, seconds=1))
    T.add_event(con, "not_new", AS_OF - timedelta(days=1))
    T.add_customer(con, "active_edge", signed_up_at=long_ago)
    T.add_event(con, "active_edge", AS_OF - timedelta(days=30))                    # exactly 30 days: active
    T.add_customer(con, "lapsed_edge", signed_up_at=long_ago)
    T.add_event(con, "lapsed_edge", AS_OF - timedelta(days=30, seconds=1))         # just over 30: lapsed
    T.add_customer(con, "lapsed_90", signed_up_at=long_ago)
    T.add_event(con, "lapsed_90", AS_OF - timedelta(days=90))                      # exactly 90: still lapsed
    T.add_customer(con, "churned", signed_up_at=long_ago)
    T.add_event(con, "churned", AS_OF - timedelta(days=90, seconds=1))
    T.add_customer(con, "future", signed_up_at=AS_OF)                              # signs up at as_of: excluded
    summary = compute_segments(con, cfg, WEEK)
    stages = {r["customer_id"]: r["stage"] for r in T.rows(con, "SELECT customer_id, stage FROM segments")}
    assert stages == {
        "prospect": "prospect", "prospect_new": "prospect", "new": "new", "not_new": "active",
        "active_edge": "active", "lapsed_edge": "lapsed", "lapsed_90": "lapsed", "churned": "churned",
    }
    assert summary.rows == 8 and summary.by_stage["active"] == 2
    assert seg(con, "lapsed_90")["days_since_active"] == 90
    assert seg(con, "lapsed_edge")["stage_reason"] == "lapsed: last activity 2026-10-23 (30 days before 2026-11-23, 30-90)"


def test_seasonal_is_a_churned_customer_active_in_the_same_period_last_year(con, cfg):
    assert same_period_last_year(WEEK).key == "2025-11-17"      # 52 weeks: a Monday again
    T.add_customer(con, "seasonal", signed_up_at="2024-01-01")
    T.add_event(con, "seasonal", "2025-11-20 10:00:00")             # in the week 2025-11-17..23
    T.add_customer(con, "lapsed_regular", signed_up_at="2024-01-01")
    T.add_event(con, "lapsed_regular", "2025-11-20 10:00:00")
    T.add_event(con, "lapsed_regular", "2026-10-01 10:00:00")       # stopped 53 days ago: lapsed, not seasonal
    T.add_customer(con, "churned", signed_up_at="2024-01-01")
    T.add_event(con, "churned", "2025-11-10 10:00:00")              # the week before last year's: not seasonal
    compute_segments(con, cfg, WEEK)
    assert seg(con, "seasonal")["stage"] == "seasonal" and seg(con, "seasonal")["active_same_period_last_year"]
    assert seg(con, "lapsed_regular")["stage"] == "lapsed"
    assert seg(con, "churned")["stage"] == "churned"
    assert "2025-11-17..2025-11-23" in seg(con, "seasonal")["stage_reason"]
    month = Period("monthly", date(2026, 11, 1))
    assert same_period_last_year(month).key == "2025-11-01"
    assert same_period_last_year(Period("yearly", date(2026, 1, 1))).key == "2025-01-01"


def test_thresholds_are_configurable(con, tmp_path):
    cfg = T.config(tmp_path, segments={"new_days": 7, "active_days": 14, "lapsed_days": 20})
    T.add_customer(con, "a", signed_up_at="2026-11-01")
    T.add_event(con, "a", "2026-11-05 10:00:00")       # 17.6 days before as_of: 14..20 -> lapsed
    T.add_customer(con, "b", signed_up_at="2026-11-01")
    T.add_event(con, "b", "2026-11-02 10:00:00")       # 20.6 days: over 20 -> churned
    T.add_customer(con, "c", signed_up_at="2026-11-17")
    T.add_event(con, "c", "2026-11-17 10:00:00")       # signed up 5.6 days ago: new
    compute_segments(con, cfg, WEEK)
    assert (seg(con, "a")["stage"], seg(con, "b")["stage"], seg(con, "c")["stage"]) == ("lapsed", "churned", "new")


def test_engagement_tiers(con, cfg):
    for cid in ("silent", "opened", "clicked", "at_risk", "old_open", "by_email", "unsub"):
        T.add_customer(con, cid, signed_up_at="2024-01-01", email=f"{cid}@example.com")
        T.add_event(con, cid, "2026-11-20 10:00:00")
    T.add_email_event(con, "send", "2026-11-01", customer_id="silent", message_id="s1")
    T.add_email_event(con, "open", "2026-11-02", customer_id="opened", message_id="o1")
    T.add_email_event(con, "open", "2026-11-02", customer_id="clicked", message_id="c1")
    T.add_email_event(con, "click", AS_OF - timedelta(days=90), customer_id="clicked", message_id="c1")  # edge: inside
    T.add_email_event(con, "click", "2026-11-05", customer_id="at_risk", message_id="r1")
    T.add_email_event(con, "complaint", "2024-03-01", customer_id="at_risk", message_id="r0")  # never forgotten
    T.add_email_event(con, "open", AS_OF - timedelta(days=90, seconds=1), customer_id="old_open", message_id="x")
    T.add_email_event(con, "click", "2026-11-10", email="BY_EMAIL@example.com", message_id="e1")   # no customer id
    T.add_email_event(con, "unsubscribe", "2026-11-10", customer_id="unsub", campaign=None)
    T.add_email_event(con, "click", "2026-11-25", customer_id="silent", message_id="s1")   # after as_of: ignored
    compute_segments(con, cfg, WEEK)
    tiers = {r["customer_id"]: r["tier"] for r in T.rows(con, "SELECT customer_id, tier FROM segments")}
    assert tiers == {"silent": "silent", "opened": "opened", "clicked": "clicked", "at_risk": "at_risk",
                     "old_open": "silent", "by_email": "clicked", "unsub": "at_risk"}
    assert seg(con, "at_risk")["tier_reason"] == "at_risk: complaint on 2024-03-01"
    assert seg(con, "opened")["last_open_at"] == datetime(2026, 11, 2)


def test_consecutive_unopened_value_emails(con, cfg):
    T.add_customer(con, "a", signed_up_at="2024-01-01")
    T.add_customer(con, "never", signed_up_at="2024-01-01")
    T.add_customer(con, "fresh", signed_up_at="2024-01-01")
    # a: 3 messages, the first opened; the 2nd and 3rd (send + delivery rows each) unopened
    T.add_email_event(con, "send", "2026-10-01 08:00", customer_id="a", message_id="m1", period="2026-09-21")
    T.add_email_event(con, "delivery", "2026-10-01 08:01", customer_id="a", message_id="m1", period="2026-09-21")
    T.add_email_event(con, "open", "2026-10-02 09:00", customer_id="a", message_id="m1", period="2026-09-21")
    for i, day in ((2, "2026-10-08"), (3, "2026-10-15")):
        T.add_email_event(con, "send", f"{day} 08:00", customer_id="a", message_id=f"m{i}")
        T.add_email_event(con, "delivery", f"{day} 08:01", customer_id="a", message_id=f"m{i}")
    T.add_email_event(con, "send", "2026-10-16 08:00", customer_id="a", message_id="receipt", campaign=None)  # not a value e-mail
    T.add_email_event(con, "send", "2026-12-01 08:00", customer_id="a", message_id="m9")   # after as_of
    for i in range(4):
        T.add_email_event(con, "delivery", f"2026-10-0{i + 1} 08:00", customer_id="never", message_id=f"n{i}")
    T.add_email_event(con, "send", "2026-11-01 08:00", customer_id="fresh", message_id="f1")
    T.add_email_event(con, "click", "2026-11-01 09:00", customer_id="fresh", message_id="f1")
    compute_segments(con, cfg, WEEK)
    assert (seg(con, "a")["consecutive_unopened"], seg(con, "a")["value_emails_sent"]) == (2, 3)
    assert (seg(con, "never")["consecutive_unopened"], seg(con, "never")["value_emails_sent"]) == (4, 4)
    assert seg(con, "fresh")["consecutive_unopened"] == 0


def test_rerun_is_idempotent_and_reason_is_complete(con, cfg):
    T.add_customer(con, "a", signed_up_at="2026-11-20")
    T.add_event(con, "a", "2026-11-21 10:00:00")
    compute_segments(con, cfg, WEEK)
    select = f"SELECT {', '.join(COLUMN_NAMES)} FROM segments ORDER BY customer_id"
    first = con.execute(select).fetchall()
    compute_segments(con, cfg, WEEK)
    assert con.execute(select).fetchall() == first
    r = seg(con, "a")
    assert r["reason"] == ("new: signed up 2026-11-20 (3 days before 2026-11-23, within 30); "
                           "silent: no open or click within 90 days; 0 value e-mails unopened in a row")
    assert r["as_of"] == AS_OF and r["active_in_period"] is True


def test_at_risk_event_list_is_configurable(con, tmp_path):
    cfg = T.config(tmp_path, segments={"at_risk_events": ["complaint"]})
    T.add_customer(con, "a", signed_up_at="2024-01-01")
    T.add_email_event(con, "subscription", "2026-11-10", customer_id="a", campaign=None)
    compute_segments(con, cfg, WEEK)
    assert seg(con, "a")["tier"] == "silent"


def test_a_year_to_date_is_judged_as_of_its_cutoff_not_the_year_end(con, cfg):
    """Issue #12: the wrapped sent on 1 December called November's customers lapsed "36 days before 2027-01-01"."""
    year_to_date = Period("yearly", date(2026, 1, 1)).until(date(2026, 12, 1))
    T.add_customer(con, "november", signed_up_at="2025-03-01")
    T.add_event(con, "november", "2026-11-25 10:00:00")
    T.add_customer(con, "newcomer", signed_up_at="2026-11-10")     # 21 days before the cut-off: new
    T.add_event(con, "newcomer", "2026-11-12 10:00:00")
    T.add_customer(con, "after_cutoff", signed_up_at="2026-12-02")  # not a customer yet at the cut-off
    T.add_customer(con, "september", signed_up_at="2025-03-01")
    T.add_event(con, "september", "2026-09-15 10:00:00")
    T.add_event(con, "september", "2026-12-02 10:00:00")           # after the cut-off: not seen
    summary = compute_segments(con, cfg, year_to_date)
    assert seg(con, "november", year_to_date)["stage"] == "active"
    assert seg(con, "november", year_to_date)["stage_reason"] == \
        "active: last activity 2026-11-25 (5 days before 2026-12-01, within 30)"
    assert seg(con, "newcomer", year_to_date)["stage"] == "new"
    assert seg(con, "after_cutoff", year_to_date) is None
    assert seg(con, "september", year_to_date)["stage"] == "lapsed"
    assert seg(con, "november", year_to_date)["as_of"] == datetime(2026, 12, 1)
    assert summary.as_of == "2026-12-01T00:00:00" and summary.rows == 3
