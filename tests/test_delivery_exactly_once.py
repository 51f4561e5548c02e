"""Exactly once, proven at a real SMTP server: SIGKILL the sender mid-batch, re-run, count Message-IDs.

The SMTP server is aiosmtpd in its own process (``delivery/smtp_sink.py``); it commits each
accepted message's Message-ID to SQLite before answering 250, duplicates included.  The
sender is this module run as a script in a subprocess (``python tests/test_delivery_exactly_once.py``),
so it can be SIGKILLed for real: no ``finally``, no atexit, the DuckDB ledger left as it was.

Three kill points:

* **random**: a slowed-down server (3 ms per message), killed once ~40 % of the messages
  have arrived — somewhere in the middle of a batch, with messages in flight;
* **after_accept**: the sender kills itself right after the server said 250 for its 7th
  message and *before* its journal records it — the hardest case: the message is at the
  server, the sender's records say "in flight".  Reconcile finds it in the server's log;
* **before_send**: killed after journalling "about to send" but before the transport call:
  reconcile looks it up, does not find it, and the re-run sends it (once).

After the kill, a second run (in this process) must leave every eligible customer with
exactly one message at the server — none twice, none missing — and every ledger row
``sent``.  Without the server log, the after_accept message must stay ``unknown`` and must
not be re-sent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_support import PERIOD, REPO, decide, make_home, smtp_settings, smtp_sink  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("smtp")]

N = 240
BATCH = 40


def _home(tmp_path, with_log=True, sink=None):
    smtp = smtp_settings(sink, connections=2) if sink else {}
    if not with_log:
        smtp["reconcile_log"] = ""
    home = make_home(tmp_path, n=N, domain="gmail.com", transport="smtp", batch_size=BATCH,
                     reconcile_grace_s=0.3, smtp=smtp)
    decide(home)
    return home


def _expected_message_ids(home) -> dict[str, str]:
    with home.con() as con:
        return dict(con.execute(
            "SELECT message_id, customer_id FROM outbox WHERE campaign = ? AND period = ?",
            [PERIOD.campaign, PERIOD.start]).fetchall())


def _start_sender(home, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, str(home.path), mode],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _rerun(home):
    from delivery.send import deliver_period

    with home.con() as con:
        report = deliver_period(con, home.config, PERIOD)
        ledger = dict(con.execute(
            "SELECT customer_id, status FROM outbox WHERE campaign = ? AND period = ?",
            [PERIOD.campaign, PERIOD.start]).fetchall())
    return report, ledger


def _assert_exactly_once(sink, home, ledger):
    received = Counter(sink.received())
    twice = {mid: n for mid, n in received.items() if n > 1}
    assert not twice, f"sent more than once: {twice}"
    with home.con() as con:
        eligible = {r[0] for r in con.execute(
            "SELECT customer_id FROM eligibility WHERE campaign = ? AND period = ? AND reason = 'send'",
            [PERIOD.campaign, PERIOD.start]).fetchall()}
        by_customer = dict(con.execute(
            "SELECT customer_id, message_id FROM outbox WHERE campaign = ? AND period = ?",
            [PERIOD.campaign, PERIOD.start]).fetchall())
    assert len(eligible) == N
    missing = [cid for cid in eligible if received.get(by_customer.get(cid), 0) != 1]
    assert not missing, f"{len(missing)} eligible customers got no message: {missing[:5]}"
    assert set(received) == {by_customer[cid] for cid in eligible}  # and nobody else got one
    assert set(ledger.values()) == {"sent"}


def test_sigkill_mid_batch_then_rerun_sends_each_message_exactly_once(tmp_path):
    with smtp_sink(tmp_path, "--delay-ms", "3", "--pipelining") as sink:
        home = _home(tmp_path, sink=sink)
        proc = _start_sender(home, "random")
        deadline = time.monotonic() + 60
        while len(sink.received()) < N * 0.4:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the sender did not get going"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        at_kill = len(sink.received())
        assert 0 < at_kill < N, "the kill must land mid-run"
        with home.con() as con:
            states = Counter(r[0] for r in con.execute("SELECT status FROM outbox").fetchall())
        assert states["sending"] > 0, f"the kill should leave a batch in 'sending': {states}"

        report, ledger = _rerun(home)
        assert sum(report.reconciled.values()) >= states["sending"]
        _assert_exactly_once(sink, home, ledger)


@pytest.mark.parametrize("mode", ["after_accept", "before_send"])
def test_kill_at_the_worst_moment_is_reconciled_at_the_server_log(tmp_path, mode):
    with smtp_sink(tmp_path) as sink:
        home = _home(tmp_path, sink=sink)
        proc = _start_sender(home, mode)
        out = proc.communicate(timeout=60)[0].decode()
        assert proc.returncode == -signal.SIGKILL, out
        before = Counter(sink.received())
        report, ledger = _rerun(home)
        assert report.reconciled.get("sent", 0) >= 1
        _assert_exactly_once(sink, home, ledger)
        if mode == "after_accept":  # the killed-in-flight message was already there: not sent again
            assert sum(before.values()) == sum(Counter(sink.received()).values()) - report.sent


def test_without_a_server_log_an_in_doubt_message_stays_unknown_and_is_not_resent(tmp_path):
    with smtp_sink(tmp_path) as sink:
        home = _home(tmp_path, with_log=False, sink=sink)
        proc = _start_sender(home, "after_accept")
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        report, ledger = _rerun(home)
        unknown = [cid for cid, status in ledger.items() if status == "unknown"]
        assert len(unknown) == 1, ledger
        received = Counter(sink.received())
        assert all(n == 1 for n in received.values())  # nothing twice ...
        assert len(received) == N                       # ... and the unknown one did arrive, once
        assert set(s for cid, s in ledger.items() if cid not in unknown) == {"sent"}
        # A later run looks it up again and still does not re-send it.
        report2, ledger2 = _rerun(home)
        assert report2.sent == 0 and ledger2[unknown[0]] == "unknown"
        assert Counter(sink.received()) == received


# -- the sender, run as a subprocess -----------------------------------------------------------------
def _sender_main(home_path: str, mode: str) -> None:
    from delivery.send import deliver_period
    from delivery.transports import make_transport
    from test_delivery_support import make_config

    # Same overrides as the test's home (reads the same files).
    import json

    config = make_config(Path(home_path), **json.loads((Path(home_path) / "delivery.json").read_text()))
    transport = make_transport(config)
    real_session = transport.session
    count = {"n": 0}

    class KillingSession:
        def __init__(self):
            self.inner = real_session()

        def send(self, envelope, data):
            count["n"] += 1
            if mode == "before_send" and count["n"] == 7:
                os.kill(os.getpid(), signal.SIGKILL)
            tid = self.inner.send(envelope, data)
            if mode == "after_accept" and count["n"] == 7:
                os.kill(os.getpid(), signal.SIGKILL)  # accepted by the server, not yet journalled
            return tid

        def close(self):
            self.inner.close()

    if mode != "random":
        transport.session = KillingSession  # type: ignore[method-assign]
        transport.workers = 1
    from valuemail.warehouse import connect

    with connect(config.warehouse_path) as con:
        deliver_period(con, config, PERIOD, transport=transport)
    print("finished without being killed", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    _sender_main(sys.argv[1], sys.argv[2])
