"""One re-run after a crash completes the period: every eligible customer exactly once, at every kill moment.

A re-run is what the job does: the eligibility stage (``reconcile_and_decide``: reconcile the
ledger, then decide) and the send stage (``deliver_period``).  The sender is a real process
(``tests/test_delivery_exactly_once.py`` run as a script) SIGKILLed early, mid-run or late
against a real aiosmtpd server in its own process, or the server itself dies mid-send and is
started again.  After exactly ONE re-run: no Message-ID twice at the server, none missing,
every ledger row ``sent`` — nothing ``cancelled`` as "already sent".
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_exactly_once import BATCH, N, _start_sender  # noqa: E402
from test_delivery_support import PERIOD, decide, make_home, smtp_settings, smtp_sink  # noqa: E402

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
        reconcile_and_decide(con, home.config, PERIOD, store=store)
        deliver_period(con, home.config, PERIOD, store=store)
        return dict(con.execute("SELECT customer_id, status FROM outbox WHERE campaign = ? AND period = ?",
                                [PERIOD.campaign, PERIOD.start]).fetchall())


def _wait_for(sink, n, proc):
    deadline = time.monotonic() + 60
    while len(sink.received()) < n:
        assert proc.poll() is None, proc.stdout.read().decode()
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
