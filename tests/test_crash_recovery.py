"""One re-run after a crash completes the period: every eligible customer exactly once, at every kill moment.

A re-run is what the job does: the eligibility stage (``reconcile_and_decide``: reconcile the
ledger, then decide) and the send stage (``deliver_period``).  The sender is a real process
(``tests/test_delivery_exactly_once.py`` run as a script) SIGKILLed early, mid-run or late
against a real aiosmtpd server in its own process, or the server itself dies mid-send and is
started again.  After exactly ONE re-run: no Message-ID twice at the server, none missing,
every ledger row ``sent`` — nothing ``cancelled`` as "already sent".

Then ``valuemail run`` itself, a real process on a real Dagster instance: SIGKILLed mid-send,
the next run must not wait forever for the dead run's pool slot and must complete the period;
SIGTERM must stop a run at once and free its slot.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_exactly_once import BATCH, N, _start_sender  # noqa: E402
from test_delivery_support import PERIOD, SCHEDULED, decide, make_home, smtp_settings, smtp_sink  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("smtp")]


def _home(tmp_path, sink):
    home = make_home(tmp_path, n=N, domain="gmail.com", transport="smtp", batch_size=BATCH,
                     reconcile_grace_s=0.3, smtp=smtp_settings(sink, connections=2))
    decide(home)
    return home


def _rerun_like_the_job(home):
    """The eligibility asset's function, then the sent_emails asset's."""
    from delivery.send import deliver_period, reconcile_and_decide

    with home.con() as con, home.store() as store:
        reconcile_and_decide(con, home.config, PERIOD, store=store, now=SCHEDULED)  # within PERIOD's send window
        deliver_period(con, home.config, PERIOD, store=store)
        return dict(con.execute("SELECT customer_id, status FROM outbox WHERE campaign = ? AND period = ?",
                                [PERIOD.campaign, PERIOD.start]).fetchall())


def _wait_for(sink, n, proc, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while len(sink.received()) < n:
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the sender did not get going"
        time.sleep(0.005)


def _assert_complete(sink, home, ledger):
    received = Counter(sink.received())
    assert not {m: n for m, n in received.items() if n > 1}, "a message was sent twice"
    with home.con() as con:
        expected = {r[0] for r in con.execute(
            "SELECT message_id FROM outbox WHERE campaign = ? AND period = ?", [PERIOD.campaign, PERIOD.start]).fetchall()}
    assert len(expected) == N
    assert set(received) == expected, f"{len(expected - set(received))} eligible customers got nothing"
    assert Counter(ledger.values()) == {"sent": N}


@pytest.mark.parametrize("moment", [1, N // 2, N - 10], ids=["early", "middle", "late"])
def test_one_rerun_after_a_sigkill_sends_each_message_exactly_once(tmp_path, moment):
    with smtp_sink(tmp_path, "--delay-ms", "3") as sink:
        home = _home(tmp_path, sink)
        proc = _start_sender(home, "random")
        _wait_for(sink, moment, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert len(sink.received()) < N, "the kill must land before the end"
        _assert_complete(sink, home, _rerun_like_the_job(home))


def test_one_rerun_after_the_smtp_server_died_mid_send_completes_the_period(tmp_path):
    with ExitStack() as stack:
        sink = stack.enter_context(smtp_sink(tmp_path, "--delay-ms", "3"))
        home = _home(tmp_path, sink)
        proc = _start_sender(home, "random")
        _wait_for(sink, N // 2, proc)
        sink.proc.kill()  # the server dies with messages in flight; the sender carries on and stops
        sink.proc.wait(timeout=10)
        out = proc.communicate(timeout=60)[0].decode()
        assert proc.returncode == 0, out
        assert len(sink.received()) < N
        (tmp_path / "sink.port").unlink()
        sink = stack.enter_context(smtp_sink(tmp_path, "--port", str(sink.port)))  # back, same log
        _assert_complete(sink, home, _rerun_like_the_job(home))


# -- `valuemail run` killed for real ------------------------------------------------------------------
VALUEMAIL = str(Path(sys.executable).parent / "valuemail")
WEEK = "2026-11-16"


def _cli_home(tmp_path, sink):
    """Sample data, and a config that sends through the sink (slowed down so a kill lands mid-send)."""
    home = tmp_path / "home"
    config = tmp_path / "valuemail.toml"
    config.write_text(f"""
[delivery]
transport = "smtp"
reconcile_grace_s = 0.2
batch_size = 10
domain_daily_cap = 0
[delivery.smtp]
port = {sink.port}
connections = 1
reconcile_log = "{sink.db}"
""")
    env = {**os.environ, "VALUEMAIL_HOME": str(home), "VALUEMAIL_CONFIG": str(config),
           "VALUEMAIL_EMAIL_SCREENSHOT": "0"}
    env.pop("DAGSTER_HOME", None)
    subprocess.run([VALUEMAIL, "sample-data", "--customers", "200", "--seed", "3", "--end-date", "2026-11-22"],
                   env=env, check=True, capture_output=True)
    return home, env


def _start_run(env):
    return subprocess.Popen([VALUEMAIL, "run", "--campaign", "weekly", "--period", WEEK, "--allow-late"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _ledger(home):
    with duckdb.connect(str(home / "valuemail.duckdb"), read_only=True) as con:
        return dict(con.execute("SELECT message_id, status FROM outbox").fetchall())


@pytest.mark.slow
def test_a_sigkilled_run_neither_blocks_nor_loses_and_the_next_run_completes_the_period(tmp_path):
    with smtp_sink(tmp_path, "--delay-ms", "40") as sink:
        home, env = _cli_home(tmp_path, sink)
        first = _start_run(env)
        _wait_for(sink, 3, first, timeout_s=400)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        # Old behaviour: the dead run kept the pool slot and this run waited forever.
        second = _start_run(env)
        out = second.communicate(timeout=400)[0]
        assert second.returncode == 0, out[-3000:]
        assert "died without finishing: marked failed, its pool slot freed" in out
        ledger = _ledger(home)
        received = Counter(sink.received())
        assert ledger and set(ledger.values()) == {"sent"}, Counter(ledger.values())  # nothing cancelled or left
        assert received == Counter(set(ledger)), "each message exactly once at the server"


@pytest.mark.slow
def test_sigterm_stops_a_run_at_once_and_frees_its_slot(tmp_path):
    import dagster as dg

    with smtp_sink(tmp_path, "--delay-ms", "40") as sink:
        home, env = _cli_home(tmp_path, sink)
        run = _start_run(env)
        _wait_for(sink, 3, run, timeout_s=400)
        run.send_signal(signal.SIGTERM)
        out = run.communicate(timeout=15)[0]  # old behaviour: SIGTERM is captured and the run goes on
        assert run.returncode == 130, out[-3000:]
        assert "marked failed and its pool slot freed" in out
        assert len(sink.received()) < len(_ledger(home))
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        assert [r.status for r in instance.get_runs()] == [dg.DagsterRunStatus.FAILURE]
        assert not instance.event_log_storage.get_concurrency_info("duckdb_writer").claimed_slots
