"""The charts stage at speed: the process pool, peer charts drawn once, a short warehouse lock, progress lines.

Byte-identity is checked against the serial path (``draw_customer_charts`` per customer, in
this process): whatever the pool and the de-duplication do, every customer's PNG is the same.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from metrics import peers as metric_peers
from metrics.period import COLUMNS, PRIMARY_KEY, TABLE
from metrics.sqlutil import ensure_table
from valuemail import emails
from valuemail.config import load_config
from valuemail.emails import (
    NO_LINKS,
    EmailSettings,
    _data,
    _peer_histograms,
    _select_customers,
    draw_customer_charts,
    render_period_charts,
    render_period_emails,
)
from valuemail.periods import Period
from valuemail.progress import Progress
from valuemail.warehouse import connect, open_warehouse

WEEK = Period("weekly", date(2026, 11, 16))
LOCALES = ("en", "hu-HU", "zh-CN")


def links_for(customer_id: str, campaign: str) -> tuple[str, str]:
    return f"https://valuemail.example/p/{customer_id}", f"https://valuemail.example/u/{customer_id}"


def build(con, n: int) -> None:
    """``n`` eligible pro customers in three languages with few distinct task counts (many share a peer chart)."""
    ensure_table(con, TABLE, COLUMNS, PRIMARY_KEY)
    ensure_table(con, metric_peers.TABLE, metric_peers.COLUMNS, metric_peers.PRIMARY_KEY)
    con.execute("""CREATE TABLE IF NOT EXISTS eligibility (campaign VARCHAR, period DATE, customer_id VARCHAR,
                   reason VARCHAR, detail VARCHAR, decided_at TIMESTAMP, stage VARCHAR)""")
    for i in range(n):
        cid, tasks = f"c-{i:03d}", 7 * (1 + i % 4)
        con.execute("INSERT INTO customers VALUES (?, ?, ?, ?, 'UTC', 'pro', 'HU', ?, NULL, NULL, NULL, 'test', now())",
                    [cid, f"{cid}@example.com", f"Name{i} Customer", LOCALES[i % 3], datetime(2024, 1, 1)])
        con.execute("INSERT INTO eligibility VALUES (?, ?, ?, 'send', '', now(), 'active')",
                    [WEEK.campaign, WEEK.start, cid])
        daily = [tasks // 7 + (i % 2 if d == 0 else 0) for d in range(7)]
        con.execute(
            f"INSERT INTO {TABLE} (campaign, period, customer_id, value_model_version, tasks, minutes_saved, money_saved,"
            " currency, events, active_days, daily_tasks, peer_cohort, peer_cohort_size,"
            " tasks_percentile, tasks_beat_pct) VALUES (?, ?, ?, 'v1', ?, ?, 0, 'USD', ?, 7, ?, 'pro', 120, ?, ?)",
            [WEEK.campaign, WEEK.start, cid, tasks, tasks * 2, tasks, daily, 10.0 * tasks / 7, int(10 * tasks / 7)])
    con.execute("INSERT INTO peer_distribution VALUES (?, ?, 'pro', 'tasks', 120, ?, ?)",
                [WEEK.campaign, WEEK.start, [0, 5, 10, 20, 30, 50], [10, 30, 40, 30, 10]])


def _config(home: Path, **emails_section):
    return load_config(home=home, overrides={"emails": {"progress_interval_s": 3600, **emails_section}})


def _pngs(con) -> dict[tuple[str, str], bytes]:
    rows = con.execute("SELECT customer_id, kind, path, png_bytes FROM email_charts").fetchall()
    out = {}
    for cid, kind, path, size in rows:
        out[cid, kind] = Path(path).read_bytes()
        assert len(out[cid, kind]) == size
    return out


def test_pool_and_shared_peer_charts_give_the_serial_paths_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(emails, "POOL_MIN_CUSTOMERS", 0)  # 36 customers: use the pool all the same
    config = _config(tmp_path, chart_workers=2)
    con = connect(config.warehouse_path)
    build(con, 36)
    settings = EmailSettings.from_config(config)
    peers = _peer_histograms(con, WEEK)
    expected = {}
    for row in _select_customers(con, WEEK):
        for chart in draw_customer_charts(_data(row, WEEK, settings, NO_LINKS), peers, settings):
            expected[row["customer_id"], chart.kind] = chart.png

    summary = render_period_charts(con, config, WEEK)
    assert summary.workers == 2
    assert _pngs(con) == expected
    peer_charts = summary.by_kind["peer_position"]
    assert peer_charts == 36 and summary.peer_drawn == 12  # 4 task counts × 3 languages
    assert summary.charts == len(expected)
    con.close()


def test_charts_and_emails_leave_the_warehouse_readable_while_they_work(tmp_path):
    """Another process (an analyst) opens the file read-only in the middle of each stage's loop."""
    config = _config(tmp_path, progress_interval_s=0)
    with open_warehouse(config.warehouse_path) as con:
        build(con, 4)
    probe = [sys.executable, "-c",
             "import duckdb, sys; print(duckdb.connect(sys.argv[1], read_only=True)"
             ".execute('SELECT count(*) FROM customers').fetchone()[0])", str(config.warehouse_path)]
    answers: dict[str, subprocess.CompletedProcess] = {}

    def progress(line: str) -> None:  # once per stage, in the middle of its loop
        stage = line.split(":")[0]
        if "done in" not in line and stage not in answers:
            answers[stage] = subprocess.run(probe, capture_output=True, text=True, timeout=60)

    def opener():
        return open_warehouse(config.warehouse_path)

    charts = render_period_charts(opener, config, WEEK, progress=progress)
    emails_summary = render_period_emails(opener, config, WEEK, links_for=links_for, progress=progress)
    assert {k: (a.returncode, a.stdout.strip()) for k, a in answers.items()} == {"charts": (0, "4"), "e-mails": (0, "4")}, \
        [a.stderr[-300:] for a in answers.values()]
    assert charts.charts == 12 and emails_summary.rendered == 4
    with open_warehouse(config.warehouse_path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM email_charts").fetchone()[0] == 12
        assert con.execute("SELECT count(*) FROM emails").fetchone()[0] == 4


def test_progress_lines_say_count_rate_and_eta_at_the_interval_only():
    now = [0.0]
    lines: list[str] = []
    counter = Progress("charts", 1000, lines.append, interval_s=10, clock=lambda: now[0])
    for _ in range(1000):
        now[0] += 0.05  # 20 per second: 50 s in all
        counter.advance()
    counter.done()
    assert len(lines) == 5  # every 10 s (4 during the loop) + the final line
    assert lines[0] == "charts: 200 of 1,000 (20.0%), 20/s, ETA 40s"
    assert lines[-1] == "charts: 1,000 of 1,000 (100.0%), 20/s, done in 50s"


def test_a_stage_with_a_long_interval_emits_only_its_final_line(tmp_path):
    config = _config(tmp_path)
    lines: list[str] = []
    with open_warehouse(config.warehouse_path) as con:
        build(con, 3)
        render_period_charts(con, config, WEEK, progress=lines.append)
        render_period_emails(con, config, WEEK, links_for=links_for, progress=lines.append)
    assert len(lines) == 2
    assert lines[0].startswith("charts: 3 of 3 (100.0%)") and "done in" in lines[0]
    assert lines[1].startswith("e-mails: 3 of 3 (100.0%)")


@pytest.mark.parametrize("bad", ["many", -1])
def test_bad_chart_workers_is_a_one_line_config_error(tmp_path, bad):
    from valuemail.config import ConfigError

    with pytest.raises(ConfigError, match=r"\[emails\] chart_workers"):
        EmailSettings.from_config(_config(tmp_path, chart_workers=bad))


@pytest.mark.slow
def test_valuemail_run_draws_on_the_pool_and_shows_progress_at_the_terminal(tmp_path, monkeypatch):
    """As a user runs it: the charts asset inside Dagster uses the pool, its PNGs are the serial path's
    bytes (a sample), and progress lines reach the terminal as well as the event log."""
    import dagster as dg
    from click.testing import CliRunner

    from pipelines.cli import main

    monkeypatch.setattr(emails, "POOL_MIN_CUSTOMERS", 0)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("VALUEMAIL_EMAIL_SCREENSHOT", "0")
    config_file = tmp_path / "fast.toml"
    config_file.write_text("[emails]\nchart_workers = 2\nprogress_interval_s = 0\n")
    home = tmp_path / "home"
    result = CliRunner().invoke(main, ["--home", str(home), "--config", str(config_file), "run", "--sample-customers", "250"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    progress = [line for line in result.stderr.splitlines() if line.startswith("[weekly/charts] charts: ")]
    assert progress and "/s, ETA " in progress[0] and "done in" in progress[-1]

    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(["weekly", "charts"]))
        metadata = event.asset_materialization.metadata
        logged = [e.user_message for e in instance.all_logs(event.run_id) if "charts: " in (e.user_message or "")]
    assert metadata["workers"].value == 2
    assert logged  # the same lines in the run's event log (the UI)

    config = load_config(str(config_file), home)
    with open_warehouse(config.warehouse_path, read_only=True) as con:
        period = Period("weekly", con.execute("SELECT max(period) FROM email_charts").fetchone()[0])
        settings = EmailSettings.from_config(config)
        peers = _peer_histograms(con, period)
        stored = {(c, k): p for c, k, p in con.execute("SELECT customer_id, kind, path FROM email_charts").fetchall()}
        sample = _select_customers(con, period)[::12]
    assert sum(1 for _, k in stored if k == "peer_position") >= metadata["peer_charts_drawn"].value
    for row in sample:
        for chart in draw_customer_charts(_data(row, period, settings, NO_LINKS), peers, settings):
            assert Path(stored[row["customer_id"], chart.kind]).read_bytes() == chart.png
