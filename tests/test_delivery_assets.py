"""The delivery assets materialise with a temp DuckDB; their blocking checks guard the send."""

import sys
from pathlib import Path

import dagster as dg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_support import PERIOD, make_home  # noqa: E402

from assets._common import ALLOW_LATE_TAG  # noqa: E402
from assets.delivery import build_delivery_assets  # noqa: E402
from pipelines.jobs import CUTOFF_TAG  # noqa: E402
from pipelines.sensors import build_delivery_sensors  # noqa: E402
from pipelines.resources import ValuemailResource  # noqa: E402

LATE = {ALLOW_LATE_TAG: "true"}


def _materialize(home, raise_on_error=True):
    defs = build_delivery_assets("weekly")
    return dg.materialize(
        defs,
        selection=dg.AssetSelection.assets(dg.AssetKey(["weekly", "eligibility"]), dg.AssetKey(["weekly", "sent_emails"])),
        resources={"valuemail": ValuemailResource(home=str(home.path))},
        partition_key=PERIOD.key, tags=LATE,  # PERIOD's send window has closed by now
        raise_on_error=raise_on_error,
    )


def _checks(result):
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_eligibility_then_sent_emails_with_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("VALUEMAIL_SECRET", "test-only-secret-not-for-production-0123456789")
    home = make_home(tmp_path, n=25, emails={"c0001": "noreply@acme.example"})
    result = _materialize(home)
    assert result.success
    meta = result.asset_materializations_for_node("weekly__eligibility")[0].metadata
    assert meta["send"].value == 20 and meta["domain_cap_deferred"].value == 4
    sent = result.asset_materializations_for_node("weekly__sent_emails")[0].metadata
    assert sent["sent_this_run"].value == 20
    assert "sent" in sent["report"].value
    checks = _checks(result)
    assert checks["one_decision_per_customer"].passed
    assert checks["send_decisions_pass_the_rules"].passed
    assert checks["no_message_in_doubt"].passed
    assert len(list((home.config.outbox_dir / "weekly" / PERIOD.key).glob("*.eml"))) == 20


def test_ready_to_send_blocks_when_a_send_decision_has_no_rendered_email(tmp_path, monkeypatch):
    monkeypatch.setenv("VALUEMAIL_SECRET", "test-only-secret-not-for-production-0123456789")
    home = make_home(tmp_path, n=3)
    with home.con() as con:
        con.execute("DELETE FROM emails WHERE customer_id = 'c0002'")
    defs = build_delivery_assets("weekly")
    result = dg.materialize(
        defs,
        selection=dg.AssetSelection.assets(dg.AssetKey(["weekly", "eligibility"])) | dg.AssetSelection.checks_for_assets(
            dg.AssetKey(["weekly", "emails"])),
        resources={"valuemail": ValuemailResource(home=str(home.path))},
        partition_key=PERIOD.key, tags=LATE,  # PERIOD's send window has closed by now
        raise_on_error=False,
    )
    checks = _checks(result)
    assert checks["ready_to_send"].passed is False


def test_deferred_sensor_asks_for_a_rerun_of_periods_with_deferred_customers(tmp_path, monkeypatch):
    from datetime import datetime, timezone

    from test_delivery_support import decide

    monkeypatch.setenv("VALUEMAIL_SECRET", "test-only-secret-not-for-production-0123456789")
    home = make_home(tmp_path, n=25)
    decide(home, now=datetime(2026, 11, 20, tzinfo=timezone.utc))  # yesterday or earlier: due for a re-run today
    today = datetime(2026, 11, 24, 6, tzinfo=timezone.utc)  # within PERIOD's send window
    sensor = {s.name: s for s in build_delivery_sensors(clock=lambda: today)}["deferred_weekly_sends"]
    from pipelines.definitions import defs

    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources={"valuemail": ValuemailResource(home=str(home.path))},
                                      repository_def=defs.get_repository_def())
        result = sensor.evaluate_tick(ctx)
    assert [r.partition_key for r in result.run_requests] == [PERIOD.key]
    assert result.run_requests[0].run_key.startswith(f"deferred:weekly:{PERIOD.key}:")
    assert result.run_requests[0].tags[CUTOFF_TAG] == PERIOD.as_of.isoformat()  # re-measured as the first run was


def test_deferred_sensor_resumes_a_crashed_period_running_only_the_delivery_assets(tmp_path, monkeypatch):
    """Rows a dead run left 'sending' today get a re-run at once; it never recomputes metrics (figures as sent)."""
    from datetime import datetime, timezone

    from test_delivery_support import decide

    from delivery.outbox import ensure_outbox
    from pipelines.definitions import defs

    monkeypatch.setenv("VALUEMAIL_SECRET", "test-only-secret-not-for-production-0123456789")
    home = make_home(tmp_path, n=3)
    decide(home)  # today: nothing deferred from an earlier day
    with home.con() as con:
        ensure_outbox(con)
        con.execute("INSERT INTO outbox (campaign, period, customer_id, email, status, attempts, message_id, "
                    "batch_id, claimed_at, created_at, updated_at) VALUES (?, ?, 'c0000', 'u0@acme.example', "
                    "'sending', 1, '<m@x>', 'b1', now(), now(), now())", [PERIOD.campaign, PERIOD.start])
    within_window = datetime(2026, 11, 24, 6, tzinfo=timezone.utc)  # PERIOD's send window is still open
    sensor = {s.name: s for s in build_delivery_sensors(clock=lambda: within_window)}["deferred_weekly_sends"]
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources={"valuemail": ValuemailResource(home=str(home.path))},
                                      repository_def=defs.get_repository_def())
        result = sensor.evaluate_tick(ctx)
    [request] = result.run_requests
    assert request.partition_key == PERIOD.key
    wanted = {dg.AssetKey(["weekly", name]) for name in ("eligibility", "charts", "emails", "sent_emails")}
    assert set(request.asset_selection) == wanted
    assert wanted < set(defs.resolve_job_def("weekly_value_email").asset_layer.selected_asset_keys)  # a valid subset


@pytest.mark.parametrize("campaign", ["weekly", "monthly", "yearly"])
def test_every_delivery_asset_is_documented(campaign):
    for item in build_delivery_assets(campaign):
        if isinstance(item, dg.AssetsDefinition) and item.keys:
            for key in item.keys:
                assert item.descriptions_by_key.get(key), key


def test_sent_emails_fails_visibly_when_the_transport_is_down_and_loses_nothing(tmp_path, monkeypatch):
    import socket

    monkeypatch.setenv("VALUEMAIL_SECRET", "test-only-secret-not-for-production-0123456789")
    home = make_home(tmp_path, n=3, domain="gmail.com")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config_file = tmp_path / "smtp.toml"
    config_file.write_text(f'[delivery]\ntransport = "smtp"\n[delivery.smtp]\nport = {port}\ntimeout_s = 2\n')
    result = dg.materialize(
        build_delivery_assets("weekly"),
        selection=dg.AssetSelection.assets(dg.AssetKey(["weekly", "eligibility"]), dg.AssetKey(["weekly", "sent_emails"])),
        resources={"valuemail": ValuemailResource(home=str(home.path), config_file=str(config_file))},
        partition_key=PERIOD.key, tags=LATE, raise_on_error=False)
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert "delivery stopped early" in failure.event_specific_data.error.message or \
        "cannot connect" in str(failure.event_specific_data.error)
    with home.con() as con:
        assert {r[0] for r in con.execute("SELECT status FROM outbox").fetchall()} == {"pending"}
