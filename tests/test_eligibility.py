"""Eligibility: one decision per customer, every reason, the fixed precedence, preferences, domain cap, segments."""

import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_support import PERIOD, decide, make_home  # noqa: E402

from delivery.eligibility import REASONS  # noqa: E402
from delivery.send import deliver_period  # noqa: E402
from valuemail.periods import Period  # noqa: E402


def _reasons(home, period=PERIOD) -> dict[str, str]:
    with home.con() as con:
        return dict(con.execute("SELECT customer_id, reason FROM eligibility WHERE campaign = ? AND period = ?",
                                [period.campaign, period.start]).fetchall())


def test_the_precedence_is_the_documented_one():
    assert REASONS == (
        "already_sent", "stale_period", "invalid_customer", "invalid_email", "role_address", "excluded_domain",
        "complained", "bounced", "suppressed", "unsubscribed", "frequency_not_due", "prospect", "churned", "lapsed",
        "inactive_in_period", "nothing_to_report", "duplicate_address", "domain_cap_deferred", "send")


def test_every_reason_and_exactly_one_decision_per_customer(tmp_path):
    emails = {
        "c0001": "not-an-address", "c0002": "no-reply@gmail.com", "c0003": "someone@example.invalid",
        "c0004": "clerk@agency.gov", "c0012": "hr+cv@gmail.com",
    }
    home = make_home(tmp_path, n=14, domain="gmail.com", emails=emails,
                     active={f"c{i:04d}" for i in range(14)} - {"c0009"})
    with home.store() as store:
        store.suppress("c0005", "complaint", "complaint")
        store.suppress("c0006", "hard_bounce", "bounce")
        store.suppress("c0007", "manual", "operator")
        store.unsubscribe("c0008", "page")
        store.set_frequency("c0010", "yearly", "page")
    with home.con() as con:
        con.execute("UPDATE customer_metrics SET tasks = 0, minutes_saved = 0 WHERE customer_id = 'c0011'")
        con.execute("INSERT INTO customers SELECT 'late', 'late@gmail.com', 'L', 'en', 'UTC', 'pro', 'HU', "
                    "TIMESTAMP '2026-12-01', NULL, NULL, NULL, 't', now()")  # signed up after the period
    decide(home)
    got = _reasons(home)
    assert got == {
        "c0000": "send", "c0001": "invalid_email", "c0002": "role_address", "c0003": "excluded_domain",
        "c0004": "excluded_domain", "c0005": "complained", "c0006": "bounced", "c0007": "suppressed",
        "c0008": "unsubscribed", "c0009": "inactive_in_period", "c0010": "frequency_not_due",
        "c0011": "nothing_to_report", "c0012": "role_address", "c0013": "send",
    }


def test_the_first_matching_rule_decides(tmp_path):
    home = make_home(tmp_path, n=4, domain="gmail.com", emails={"c0000": "support@gmail.com", "c0001": "bad address"},
                     active={"c0003"})
    with home.store() as store:
        for cid in ("c0000", "c0001", "c0002"):
            store.unsubscribe(cid, "page")        # unsubscribed ...
        store.suppress("c0002", "complaint", "complaint")   # ... and complained: the more severe wins
        store.set_frequency("c0003", "never", "page")
    decide(home)
    # role beats unsubscribed beats inactive; invalid beats everything about the person; never beats stage
    assert _reasons(home) == {"c0000": "role_address", "c0001": "invalid_email", "c0002": "complained",
                              "c0003": "frequency_not_due"}


@pytest.mark.parametrize("frequency,expected", [
    ("weekly", {"weekly": "send", "monthly": "send", "yearly": "send"}),
    ("monthly", {"weekly": "frequency_not_due", "monthly": "send", "yearly": "send"}),
    ("yearly", {"weekly": "frequency_not_due", "monthly": "frequency_not_due", "yearly": "send"}),
    ("never", {"weekly": "frequency_not_due", "monthly": "frequency_not_due", "yearly": "frequency_not_due"}),
])
def test_the_preference_decides_which_campaigns_a_customer_gets(tmp_path, frequency, expected):
    home = make_home(tmp_path, n=1, domain="gmail.com")
    periods = {"weekly": PERIOD, "monthly": Period("monthly", PERIOD.start.replace(day=1)),
               "yearly": Period("yearly", PERIOD.start.replace(month=1, day=1))}
    with home.con() as con:
        for campaign, p in periods.items():
            if campaign != "weekly":
                con.execute("INSERT INTO customer_metrics VALUES (?, ?, 'c0000', 5, 1, 0)", [campaign, p.start])
    with home.store() as store:
        store.set_frequency("c0000", frequency, "page")
    got = {}
    for campaign, p in periods.items():
        decide(home, period=p)
        got[campaign] = _reasons(home, p)["c0000"]
    assert got == expected


def test_suppressions_are_final_until_the_customer_opts_in_again(tmp_path):
    home = make_home(tmp_path, n=1, domain="gmail.com")
    with home.store() as store:
        store.suppress("c0000", "hard_bounce", "bounce")
        store.set_frequency("c0000", "weekly", "page")     # changing the frequency is not an opt-in
    decide(home)
    assert _reasons(home)["c0000"] == "bounced"
    with home.store() as store:
        store.resubscribe("c0000", "page")                 # an explicit opt-in lifts it
    decide(home)
    assert _reasons(home)["c0000"] == "send"


def test_already_sent_beats_everything(tmp_path):
    home = make_home(tmp_path, n=2, domain="gmail.com")
    decide(home)
    with home.con() as con:
        deliver_period(con, home.config, PERIOD)
    with home.store() as store:
        store.unsubscribe("c0000", "one_click")
    decide(home)
    assert _reasons(home) == {"c0000": "already_sent", "c0001": "already_sent"}


def test_domain_cap_defers_the_rest_to_the_next_day_and_the_next_run_picks_them_up(tmp_path):
    home = make_home(tmp_path, n=45, domain="acme.example",
                     emails={"c0044": "free@gmail.com"})  # exempt provider: never capped
    day1 = datetime(2026, 11, 23, 8, tzinfo=timezone.utc)
    decide(home, now=day1)
    got = _reasons(home)
    assert sum(r == "send" for r in got.values()) == 21 and sum(r == "domain_cap_deferred" for r in got.values()) == 24
    assert [c for c, r in sorted(got.items()) if r == "send"][:20] == [f"c{i:04d}" for i in range(20)]
    with home.con() as con:
        assert deliver_period(con, home.config, PERIOD, now=lambda: day1.replace(tzinfo=None)).sent == 21
        detail = con.execute("SELECT detail FROM eligibility WHERE reason = 'domain_cap_deferred' LIMIT 1").fetchone()[0]
    assert "daily cap of 20" in detail and "next day" in detail
    decide(home, now=day1)  # same day again: the cap is used up by what went out today
    assert sum(r == "send" for r in _reasons(home).values()) == 0
    day2 = datetime(2026, 11, 24, 8, tzinfo=timezone.utc)
    decide(home, now=day2)
    got = _reasons(home)
    assert sum(r == "already_sent" for r in got.values()) == 21
    assert sum(r == "send" for r in got.values()) == 20 and sum(r == "domain_cap_deferred" for r in got.values()) == 4
    with home.con() as con:
        assert deliver_period(con, home.config, PERIOD, now=lambda: day2.replace(tzinfo=None)).sent == 20
    decide(home, now=datetime(2026, 11, 25, 8, tzinfo=timezone.utc))
    assert set(_reasons(home).values()) == {"already_sent", "send"}


def test_segments_decide_the_lifecycle_stage_when_present(tmp_path):
    home = make_home(tmp_path, n=6, domain="gmail.com", active={"c0000", "c0001", "c0002", "c0003", "c0004"})
    with home.con() as con:
        con.execute("""CREATE TABLE segments (campaign VARCHAR, period DATE, customer_id VARCHAR, stage VARCHAR,
                       tier VARCHAR, consecutive_unopened INTEGER, last_active_at TIMESTAMP)""")
        con.executemany("INSERT INTO segments VALUES ('weekly', ?, ?, ?, ?, ?, NULL)", [
            (PERIOD.start, "c0000", "active", "clicked", 0), (PERIOD.start, "c0001", "prospect", "silent", 0),
            (PERIOD.start, "c0002", "lapsed", "silent", 0), (PERIOD.start, "c0003", "churned", "at_risk", 0),
            (PERIOD.start, "c0004", "new", "opened", 9), (PERIOD.start, "c0005", "seasonal", "silent", 0)])
    decide(home)
    assert _reasons(home) == {"c0000": "send", "c0001": "prospect", "c0002": "lapsed", "c0003": "churned",
                              "c0004": "frequency_not_due", "c0005": "inactive_in_period"}  # c0004: sunset (9 unopened)
    with home.con() as con:
        row = con.execute("SELECT stage, tier, effective_frequency FROM eligibility WHERE customer_id = 'c0004'").fetchone()
    assert row == ("new", "opened", "monthly")


def test_without_segments_lapsed_and_churned_come_from_the_last_event(tmp_path):
    home = make_home(tmp_path, n=3, domain="gmail.com", active=set())
    with home.con() as con:
        con.execute("""INSERT INTO events SELECT 'e' || customer_id, customer_id, ts, 'login', 1, NULL, NULL, NULL, NULL,
                       true, 't', now() FROM (VALUES ('c0000', TIMESTAMP '2026-11-10'), ('c0001', TIMESTAMP '2026-09-20'),
                       ('c0002', TIMESTAMP '2026-03-01')) v(customer_id, ts)""")
    decide(home)
    assert _reasons(home) == {"c0000": "inactive_in_period", "c0001": "lapsed", "c0002": "churned"}
