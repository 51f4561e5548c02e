"""The preference store: the frequency → campaign rule, suppressions, the change log, bulk reads, concurrency."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from preference_centre.store import (
    CAMPAIGNS,
    DEFAULT_STATE,
    CustomerState,
    PreferenceStore,
    StoreError,
    default_url,
)
from tests.pc_fixtures import REPO


@pytest.fixture
def store(tmp_path):
    with PreferenceStore(default_url(tmp_path)) as s:
        yield s


# -- the rule, as a pure function ------------------------------------------------------------
@pytest.mark.parametrize(
    ("frequency", "sendable"),
    [
        ("weekly", {"weekly", "monthly", "yearly"}),
        ("monthly", {"monthly", "yearly"}),
        ("yearly", {"yearly"}),
        ("never", set()),
    ],
)
def test_frequency_is_the_most_frequent_campaign_wanted(frequency, sendable):
    state = CustomerState(frequency)
    for campaign in CAMPAIGNS:
        ok, reason = state.allows(campaign)
        assert ok == (campaign in sendable)
        if not ok:
            assert reason == ("frequency_never" if frequency == "never" else "frequency_not_due")


@pytest.mark.parametrize(
    ("suppression", "reason"),
    [("unsubscribed", "unsubscribed"), ("hard_bounce", "bounced"), ("complaint", "complained"), ("manual", "suppressed")],
)
def test_any_suppression_blocks_every_campaign_whatever_the_frequency(suppression, reason):
    for frequency in ("weekly", "monthly", "yearly", "never"):
        for campaign in CAMPAIGNS:
            assert CustomerState(frequency, suppression).allows(campaign) == (False, reason)


def test_unknown_campaign_is_an_error_not_a_silent_no():
    with pytest.raises(StoreError, match="unknown campaign"):
        DEFAULT_STATE.allows("daily")


# -- the store ----------------------------------------------------------------------------------
def test_a_customer_never_heard_of_gets_weekly_and_everything(store):
    assert store.frequency("nobody") == "weekly"
    assert store.state("nobody") == DEFAULT_STATE
    assert all(store.is_sendable("nobody", c) == (True, None) for c in CAMPAIGNS)
    assert store.profile("nobody") is None and not store.exists("nobody")


def test_store_is_sqlite_in_wal_mode_under_home(tmp_path, store):
    assert store.url == f"sqlite:///{tmp_path / 'preferences.sqlite'}"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 1000


def test_set_frequency_records_old_new_source_and_time(store):
    before = datetime.now(timezone.utc)
    assert store.set_frequency("c1", "monthly", "page") is True
    assert store.set_frequency("c1", "monthly", "page") is False  # no change, no log row
    assert store.set_frequency("c1", "never", "import", detail="from old ESP") is True
    log = store.changes("c1")
    assert [(c.change, c.old, c.new, c.source) for c in log] == [
        ("frequency", "weekly", "monthly", "page"),
        ("frequency", "monthly", "never", "import"),
    ]
    assert log[1].detail == "from old ESP"
    assert all(c.at.tzinfo is not None and before <= c.at <= datetime.now(timezone.utc) for c in log)
    assert store.is_sendable("c1", "yearly") == (False, "frequency_never")


def test_unsubscribe_is_idempotent_and_logged_once(store):
    assert store.unsubscribe("c1", "one_click", detail="campaign=weekly") is True
    assert store.unsubscribe("c1", "one_click") is False
    assert [(c.change, c.new, c.source, c.detail) for c in store.changes("c1")] == [
        ("suppress", "unsubscribed", "one_click", "campaign=weekly")
    ]
    assert store.is_sendable("c1", "yearly") == (False, "unsubscribed")


def test_unsubscribe_keeps_the_frequency_for_when_they_come_back(store):
    store.set_frequency("c1", "monthly", "page")
    store.unsubscribe("c1", "one_click")
    assert store.state("c1") == CustomerState("monthly", "unsubscribed")
    assert store.resubscribe("c1", "page") == ["unsubscribed"]
    assert store.state("c1") == CustomerState("monthly", None)


def test_opt_in_from_the_page_lifts_unsubscribe_complaint_and_bounce_but_not_manual(store):
    store.suppress("c1", "complaint", "complaint")
    store.suppress("c1", "hard_bounce", "bounce")
    store.suppress("c1", "unsubscribed", "one_click")
    store.suppress("c1", "manual", "operator", detail="competitor")
    assert store.state("c1").suppression == "complaint"  # the most severe is reported
    lifted = store.resubscribe("c1", "page", frequency="yearly")
    assert sorted(lifted) == ["complaint", "hard_bounce", "unsubscribed"]
    assert store.state("c1") == CustomerState("yearly", "manual")
    assert store.is_sendable("c1", "yearly") == (False, "suppressed")
    assert store.lift_suppression("c1", ["manual"], "operator") == ["manual"]
    assert store.is_sendable("c1", "yearly") == (True, None)
    assert store.is_sendable("c1", "monthly") == (False, "frequency_not_due")


def test_a_new_complaint_after_an_opt_in_suppresses_again(store):
    store.suppress("c1", "complaint", "complaint")
    store.resubscribe("c1", "page")
    assert store.suppress("c1", "complaint", "complaint") is True
    assert store.state("c1").suppression == "complaint"
    profile = store.profile("c1")
    assert profile.active_suppressions == {"complaint"} and profile.suppressed_since is not None


def test_resubscribing_to_never_is_refused(store):
    store.unsubscribe("c1", "one_click")
    with pytest.raises(StoreError):
        store.resubscribe("c1", "page", frequency="never")
    assert store.state("c1").suppression == "unsubscribed"


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.set_frequency("c1", "daily", "page"),
        lambda s: s.set_frequency("c1", "weekly", "somewhere"),
        lambda s: s.suppress("c1", "angry", "page"),
        lambda s: s.set_frequency("", "weekly", "page"),
        lambda s: s.set_frequency("x" * 201, "weekly", "page"),
    ],
)
def test_bad_arguments_are_refused(store, call):
    with pytest.raises(StoreError):
        call(store)
    assert store.changes("c1") == []


def test_change_log_is_append_only(store):
    store.set_frequency("c1", "yearly", "page")
    for statement in ("UPDATE pc_changes SET new = 'weekly'", "DELETE FROM pc_changes"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with store.engine.begin() as conn:
                conn.exec_driver_sql(statement)
    assert len(store.changes("c1")) == 1


def test_upsert_customers_sets_locale_only(store):
    store.set_frequency("c1", "yearly", "page")
    assert store.upsert_customers([("c1", "hu"), ("c2", "zh-CN"), ("c3", None), ("c2", "en")]) == 3
    assert store.profile("c1").locale == "hu" and store.profile("c1").frequency == "yearly"
    assert store.profile("c2").locale == "en"  # the last one given wins
    assert store.profile("c3").frequency == "weekly" and not store.profile("c3").frequency_chosen
    store.upsert_customers([("c1", "zh-CN")])
    assert store.profile("c1").locale == "zh-CN"
    assert len(store.changes("c1")) == 1  # a locale is not a preference change


def test_bulk_state_small_and_full_scan_paths_agree(store):
    store.set_frequency("m", "monthly", "page")
    store.set_frequency("w", "weekly", "page")  # explicitly weekly = default state
    store.unsubscribe("u", "one_click")
    store.suppress("b", "hard_bounce", "bounce")
    store.set_frequency("b", "yearly", "page")
    expected = {
        "m": CustomerState("monthly"),
        "w": DEFAULT_STATE,
        "u": CustomerState("weekly", "unsubscribed"),
        "b": CustomerState("yearly", "hard_bounce"),
        "nobody": DEFAULT_STATE,
    }
    assert store.bulk_state(expected) == expected
    many = [f"x{i}" for i in range(60_000)] + list(expected)  # above the full-scan threshold
    states = store.bulk_state(many)
    assert len(states) == len(many)
    assert {k: states[k] for k in expected} == expected
    assert states["x123"] is DEFAULT_STATE
    assert store.overrides() == {k: v for k, v in expected.items() if v != DEFAULT_STATE}


def test_blocked_is_the_send_time_recheck_for_a_batch(store):
    store.set_frequency("a", "never", "page")
    store.unsubscribe("b", "one_click")
    store.set_frequency("c", "yearly", "page")
    assert store.blocked(["a", "b", "c", "d"], "weekly") == {
        "a": "frequency_never",
        "b": "unsubscribed",
        "c": "frequency_not_due",
    }
    assert store.blocked(["a", "b", "c", "d"], "yearly") == {"a": "frequency_never", "b": "unsubscribed"}


def test_concurrent_writers_in_threads_lose_nothing(tmp_path):
    """Two store objects on one file (as the web app and the pipeline have), 50 threads, 120 customers."""
    url = default_url(tmp_path)
    with PreferenceStore(url) as one, PreferenceStore(url) as two:
        barrier = threading.Barrier(50)

        def write(i: int) -> None:
            target = one if i % 2 else two
            if i < 50:
                barrier.wait()
            target.unsubscribe(f"c{i}", "one_click")
            target.set_frequency(f"c{i}", ("monthly", "yearly")[i % 2], "page")

        with ThreadPoolExecutor(max_workers=50) as pool:
            list(pool.map(write, range(120)))
        states = one.bulk_state(f"c{i}" for i in range(120))
        assert all(states[f"c{i}"] == CustomerState(("monthly", "yearly")[i % 2], "unsubscribed") for i in range(120))
        with one.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM pc_changes").scalar_one() == 240


_WRITER = """
import sys
from preference_centre.store import PreferenceStore
store = PreferenceStore(sys.argv[1])
for i in range(int(sys.argv[3])):
    store.unsubscribe(f"{sys.argv[2]}{i}", "one_click")
    store.set_frequency(f"shared", ("monthly", "yearly")[i % 2], "import")
"""


def test_concurrent_processes_on_one_sqlite_file_lose_nothing(tmp_path):
    url = default_url(tmp_path)
    PreferenceStore(url).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, url, prefix, "30"], cwd=REPO) for prefix in ("p", "q")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with PreferenceStore(url) as store:
        ids = [f"{prefix}{i}" for prefix in ("p", "q") for i in range(30)]
        assert all(s.suppression == "unsubscribed" for s in store.bulk_state(ids).values())
        shared = store.changes("shared")
        # Every logged change starts from the value the previous one left: no lost update.
        assert all(a.new == b.old for a, b in zip(shared, shared[1:]))
