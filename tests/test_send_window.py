"""Stale periods are never mailed by accident: the send window (issue #12 item 2)."""

import sys
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_support import PERIOD, decide, make_config, make_home  # noqa: E402

from delivery.send import deliver_period  # noqa: E402
from delivery.window import SendWindow  # noqa: E402
from valuemail.config import load_config  # noqa: E402
from valuemail.periods import Period  # noqa: E402
from valuemail.report import run_report  # noqa: E402

UTC = timezone.utc
ON_TIME = datetime(2026, 11, 29, 23, 59, tzinfo=UTC)   # PERIOD ends 11-23; 7 days: until 11-29 inclusive
LATE = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def _reasons(home, period=PERIOD) -> dict[str, str]:
    with home.con() as con:
        return dict(con.execute("SELECT customer_id, reason FROM eligibility WHERE campaign = ? AND period = ?",
                                [period.campaign, period.start]).fetchall())


def test_the_window_is_measured_from_the_day_each_schedule_sends(tmp_path):
    window = SendWindow.from_config(load_config(home=tmp_path))
    assert window.closes(PERIOD) == date(2026, 11, 30)
    assert not window.is_stale(PERIOD, ON_TIME) and window.is_stale(PERIOD, LATE)
    assert window.closes(Period("monthly", date(2026, 10, 1))) == date(2026, 11, 15)
    # the yearly wrapped goes out on 1 December about the year to date: due then, not when the year ends
    wrapped = Period("yearly", date(2026, 1, 1))
    assert window.due(wrapped) == date(2026, 12, 1) and window.closes(wrapped) == date(2027, 1, 15)
    assert not window.is_stale(wrapped, datetime(2026, 12, 1, 6, tzinfo=UTC))
    assert window.is_stale(Period("yearly", date(2025, 1, 1)), datetime(2026, 12, 1, 6, tzinfo=UTC))
    full_year = SendWindow.from_config(load_config(home=tmp_path, overrides={
        "schedules": {"yearly_on": "01-02", "yearly_covers": "previous_year"}}))
    assert full_year.due(wrapped) == date(2027, 1, 2) and full_year.closes(wrapped) == date(2027, 2, 16)


@pytest.mark.parametrize("value", [0, -3, "7", 1.5])
def test_a_bad_window_is_one_clear_error_naming_the_key(tmp_path, value):
    from valuemail.config import ConfigError

    with pytest.raises(ConfigError, match=r"\[delivery\] send_window_weekly_days"):
        make_config(tmp_path, send_window_weekly_days=value)


def test_a_stale_period_is_decided_stale_period_for_everybody_not_yet_mailed_and_nothing_is_sent(tmp_path):
    from delivery.outbox import sync_with_decisions

    home = make_home(tmp_path, n=4, domain="gmail.com", active={"c0000"})
    decide(home, now=ON_TIME)
    with home.con() as con:
        assert deliver_period(con, home.config, PERIOD).sent == 1
        con.execute("INSERT INTO customer_metrics VALUES (?, ?, 'c0001', 5, 1, 0), (?, ?, 'c0002', 5, 1, 0)",
                    [PERIOD.campaign, PERIOD.start] * 2)
    decide(home, now=ON_TIME)
    with home.con() as con:  # enqueued on time, but the run stopped before sending them
        assert sync_with_decisions(con, PERIOD, "example.com")["enqueued"] == 2
    decide(home, now=LATE)
    assert _reasons(home) == {"c0000": "already_sent", "c0001": "stale_period", "c0002": "stale_period",
                              "c0003": "stale_period"}
    with home.con() as con:
        report = deliver_period(con, home.config, PERIOD)
        ledger = dict(con.execute("SELECT customer_id, status FROM outbox").fetchall())
        detail = con.execute("SELECT detail FROM eligibility WHERE reason = 'stale_period' LIMIT 1").fetchone()[0]
        text = run_report(con, home.config, PERIOD)
    assert report.sent == 0 and ledger == {"c0000": "sent", "c0001": "cancelled", "c0002": "cancelled"}
    assert "2026-11-30" in detail and "--allow-late" in detail
    assert "stale" in text and "--allow-late" in text and "2026-11-30" in text


def test_a_late_send_must_be_asked_for(tmp_path):
    from delivery.eligibility import decide_eligibility

    home = make_home(tmp_path, n=2, domain="gmail.com")
    decide(home, now=LATE)
    assert set(_reasons(home).values()) == {"stale_period"}
    with home.con() as con, home.store() as store:
        decide_eligibility(con, home.config, PERIOD, store=store, now=LATE, allow_late=True)
        assert deliver_period(con, home.config, PERIOD).sent == 2
        assert "stale" not in run_report(con, home.config, PERIOD)


def test_the_deferred_sends_sensor_never_asks_for_a_stale_period(tmp_path, monkeypatch):
    from pipelines.definitions import defs
    from pipelines.resources import ValuemailResource
    from pipelines.sensors import build_delivery_sensors

    monkeypatch.setenv("VALUEMAIL_SECRET", "test-only-secret-not-for-production-0123456789")
    home = make_home(tmp_path, n=25)  # acme.example: 5 deferred by the daily cap of 20
    decide(home, now=datetime(2026, 11, 23, 8, tzinfo=UTC))

    def requested(now):
        sensor = {s.name: s for s in build_delivery_sensors(clock=lambda: now)}["deferred_weekly_sends"]
        with dg.instance_for_test() as instance:
            ctx = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def(),
                                          resources={"valuemail": ValuemailResource(home=str(home.path))})
            return sensor.evaluate_tick(ctx)

    assert [r.partition_key for r in requested(datetime(2026, 11, 24, 6, tzinfo=UTC)).run_requests] == [PERIOD.key]
    stale = requested(LATE)
    assert not stale.run_requests and "stale" in stale.skip_message


def test_a_dagster_run_sends_a_stale_period_only_with_the_allow_late_tag(tmp_path, monkeypatch):
    from assets._common import ALLOW_LATE_TAG
    from assets.delivery import build_delivery_assets
    from pipelines.resources import ValuemailResource

    monkeypatch.setenv("VALUEMAIL_SECRET", "test-only-secret-not-for-production-0123456789")
    home = make_home(tmp_path, n=3, domain="gmail.com")
    stale = Period("weekly", date(2026, 6, 1))  # long stale (and after the customers signed up)

    def eligibility(tags):
        return dg.materialize(build_delivery_assets("weekly"), selection=[dg.AssetKey(["weekly", "eligibility"])],
                              resources={"valuemail": ValuemailResource(home=str(home.path))},
                              partition_key=stale.key, tags=tags, raise_on_error=False)

    meta = eligibility({}).asset_materializations_for_node("weekly__eligibility")[0].metadata
    assert meta["stale_period"].value == 3 and meta["send"].value == 0
    with home.con() as con:
        con.execute("INSERT INTO customer_metrics SELECT campaign, ?, customer_id, tasks, minutes_saved, money_saved "
                    "FROM customer_metrics", [stale.start])
    meta = eligibility({ALLOW_LATE_TAG: "true"}).asset_materializations_for_node("weekly__eligibility")[0].metadata
    assert meta["stale_period"].value == 0 and meta["send"].value == 3
    bad = eligibility({ALLOW_LATE_TAG: "yes"})
    assert not bad.success
    failure = [e for e in bad.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert "valuemail/allow_late must be true or false" in str(failure.event_specific_data.error)


def test_re_executing_only_the_send_step_after_the_window_closed_sends_nothing(tmp_path, monkeypatch):
    """Decided on time, the send failed, and weeks later someone re-executes the failed step alone."""
    from assets._common import ALLOW_LATE_TAG
    from assets.delivery import build_delivery_assets
    from delivery.outbox import sync_with_decisions
    from pipelines.resources import ValuemailResource

    monkeypatch.setenv("VALUEMAIL_SECRET", "test-only-secret-not-for-production-0123456789")
    home = make_home(tmp_path, n=3, domain="gmail.com")
    decide(home, now=ON_TIME)
    with home.con() as con:
        sync_with_decisions(con, PERIOD, "example.com")

    def send_step(tags):
        result = dg.materialize(build_delivery_assets("weekly"), selection=[dg.AssetKey(["weekly", "sent_emails"])],
                                resources={"valuemail": ValuemailResource(home=str(home.path))},
                                partition_key=PERIOD.key, tags=tags)
        with home.con() as con:
            ledger = dict(con.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())
        return result.asset_materializations_for_node("weekly__sent_emails")[0].metadata, ledger

    meta, ledger = send_step({})
    assert ledger == {"cancelled": 3} and meta["sent_this_run"].value == 0
    assert "send window closed on 2026-11-30" in meta["stale_period"].value
    assert not list(home.config.outbox_dir.rglob("*.eml"))
    meta, ledger = send_step({ALLOW_LATE_TAG: "true"})
    assert ledger == {"sent": 3} and meta["sent_this_run"].value == 3
