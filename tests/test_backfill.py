"""Backfills and re-runs are safe: same rows as running each week, nobody mailed twice."""

import shutil

import duckdb
import pytest
from click.testing import CliRunner

from pipelines.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("backfill")]

WEEKS = ("2026-11-02", "2026-11-09", "2026-11-16")
METRIC_COLUMNS = "campaign, period, customer_id, tasks, minutes_saved, money_saved, currency, active_days, top_features"


def _cli(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _rows(home, sql):
    with duckdb.connect(str(home / "valuemail.duckdb"), read_only=True) as con:
        return sorted(con.execute(sql).fetchall(), key=repr)


def test_backfill_equals_week_by_week_and_rerunning_sends_nothing_twice(tmp_path):
    landing = tmp_path / "landing"
    _cli("sample-data", "--customers", "250", "--seed", "11", "--end-date", "2026-11-22", "--out", str(landing))
    by_range, by_week = tmp_path / "range", tmp_path / "weekly"
    for home in (by_range, by_week):
        shutil.copytree(landing, home / "landing")

    # November's send windows have closed by now: a late send, asked for
    _cli("--home", str(by_range), "backfill", "--campaign", "weekly", "--from", WEEKS[0], "--to", WEEKS[-1],
         "--allow-late")
    for week in WEEKS:
        _cli("--home", str(by_week), "run", "--campaign", "weekly", "--period", week, "--allow-late")

    metrics = f"SELECT {METRIC_COLUMNS} FROM customer_metrics"
    assert _rows(by_range, metrics) == _rows(by_week, metrics)
    assert {r[1].isoformat() for r in _rows(by_range, metrics)} == set(WEEKS)
    segments = "SELECT campaign, period, customer_id, stage FROM segments"
    assert _rows(by_range, segments) == _rows(by_week, segments)

    ledger = "SELECT campaign, period, customer_id, status, attempts, message_id FROM outbox"
    before = _rows(by_range, ledger)
    assert before and all(status == "sent" and attempts == 1 for *_, status, attempts, _ in before)
    _cli("--home", str(by_range), "backfill", "--campaign", "weekly", "--from", WEEKS[0], "--to", WEEKS[-1],
         "--allow-late")
    assert _rows(by_range, ledger) == before  # the ledger decides: nothing re-sent, nothing re-attempted
    eml = sorted((by_range / "outbox" / "weekly").rglob("*.eml"))
    assert len(eml) == len(before)


def test_a_stale_period_is_computed_but_not_sent_unless_a_late_send_is_asked_for(tmp_path):
    home = tmp_path / "home"
    _cli("sample-data", "--customers", "150", "--seed", "5", "--end-date", "2026-11-22",
         "--out", str(home / "landing"))
    output = _cli("--home", str(home), "backfill", "--campaign", "weekly", "--from", WEEKS[1], "--to", WEEKS[2])
    assert f"2 of them stale" in output and "--allow-late sends them" in output
    output = _cli("--home", str(home), "run", "--campaign", "weekly", "--period", WEEKS[2])
    assert "NOT SENT       stale period: the send window closed on 2026-11-30" in output
    assert "valuemail run --allow-late" in output
    reasons = _rows(home, "SELECT DISTINCT reason FROM eligibility")
    assert reasons == [("stale_period",)]
    assert _rows(home, "SELECT * FROM outbox") == []
    assert _rows(home, "SELECT count(*) FROM customer_metrics WHERE period = DATE '2026-11-16'")[0][0] > 0

    output = _cli("--home", str(home), "run", "--campaign", "weekly", "--period", WEEKS[2], "--allow-late")
    assert "NOT SENT" not in output
    sent = _rows(home, "SELECT count(*) FROM outbox WHERE status = 'sent' AND period = DATE '2026-11-16'")[0][0]
    assert sent > 0
