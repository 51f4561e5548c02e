"""``valuemail explain``: metrics, stage, tier, preferences, decision + reason, delivery state, events."""

import json
import sys
from pathlib import Path

from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_support import PERIOD, decide, make_home  # noqa: E402

from delivery.send import deliver_period  # noqa: E402
from pipelines.cli import main  # noqa: E402


def _explain(home, *args):
    return CliRunner().invoke(main, ["--home", str(home.path), "explain", *args, "--campaign", "weekly",
                                     "--period", PERIOD.key], catch_exceptions=False)


def test_explain_a_sent_customer_and_a_skipped_one(tmp_path, monkeypatch):
    monkeypatch.setenv("VALUEMAIL_SECRET", "test-only-secret-not-for-production-0123456789")
    home = make_home(tmp_path, n=4, domain="gmail.com", emails={"c0003": "support@gmail.com"}, active={"c0000", "c0001", "c0003"})
    with home.store() as store:
        store.set_frequency("c0001", "monthly", "page")
    decide(home)
    with home.con() as con:
        deliver_period(con, home.config, PERIOD)

    sent = _explain(home, "c0000")
    assert sent.exit_code == 0, sent.output
    out = sent.output
    assert "decision    SEND" in out and "5 tasks" in out
    assert "tasks" in out and "minutes_saved" in out            # metrics
    assert "stage" in out and "tier" in out                       # segment
    assert "frequency" in out and "weekly" in out                 # preferences
    assert "status" in out and "sent" in out and "<vm.weekly.20261116." in out  # delivery state + Message-ID

    monthly = _explain(home, "c0001").output
    assert "FREQUENCY_NOT_DUE" in monthly and "prefers monthly" in monthly
    assert "no ledger row" in monthly

    inactive = _explain(home, "c0002").output
    assert "INACTIVE_IN_PERIOD" in inactive and "no activity in the period" in inactive

    role = _explain(home, "c0003").output
    assert "ROLE_ADDRESS" in role and "precedence #5" in role  # stale_period is #2, invalid_customer #3

    as_json = json.loads(_explain(home, "c0000", "--json").output)
    assert as_json["decision"]["reason"] == "send" and as_json["delivery"]["status"] == "sent"


def test_explain_unknown_customer_fails_clearly(tmp_path):
    home = make_home(tmp_path, n=1)
    result = CliRunner().invoke(main, ["--home", str(home.path), "explain", "nobody", "--period", PERIOD.key])
    assert result.exit_code != 0 and "unknown customer" in result.output
