"""The send loop: preferences re-read at send time, one bad message never stops the batch, the report."""

import sys
import threading

import pytest
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_support import PERIOD, decide, make_home  # noqa: E402

from delivery.send import SendSettings, deliver_period  # noqa: E402
from delivery.transports.file import FileTransport  # noqa: E402


class HookedTransport(FileTransport):
    """The file transport, with a hook before each send and the time each send started."""

    def __init__(self, root, hook=None, delay_s=0.0, workers=1):
        super().__init__(root, workers=workers)
        self.hook = hook
        self.delay_s = delay_s
        self.started: dict[str, float] = {}
        self.lock = threading.Lock()
        self.count = 0

    def send(self, envelope, data):
        with self.lock:
            self.count += 1
            n = self.count
            self.started[envelope.customer_id] = time.monotonic()
        if self.hook:
            self.hook(n, envelope)
        if self.delay_s:
            time.sleep(self.delay_s)
        return super().send(envelope, data)


def _run(home, transport, **settings):
    base = SendSettings.from_config(home.config)
    s = SendSettings(**{**base.__dict__, **settings})
    with home.con() as con:
        report = deliver_period(con, home.config, PERIOD, transport=transport, settings=s)
        ledger = dict(con.execute("SELECT customer_id, status FROM outbox").fetchall())
        errors = dict(con.execute("SELECT customer_id, last_error FROM outbox").fetchall())
    return report, ledger, errors


def test_a_customer_who_unsubscribes_mid_batch_gets_nothing_after_that_moment(tmp_path):
    home = make_home(tmp_path, n=80, domain="gmail.com")
    decide(home)
    late = [f"c{i:04d}" for i in range(50, 60)]
    store = home.store()

    def hook(n, envelope):
        if n == 10:  # mid-batch: the batch was claimed, and checked, with these customers subscribed
            for cid in late:
                store.unsubscribe(cid, "one_click")
            store.set_frequency("c0061", "never", "page")

    transport = HookedTransport(home.config.outbox_dir, hook=hook, workers=1)
    report, ledger, errors = _run(home, transport, batch_size=80)
    store.close()
    assert not set(late) & set(transport.started)         # never handed to the transport
    assert all(ledger[cid] == "cancelled" for cid in late)
    assert ledger["c0061"] == "cancelled" and "frequency_not_due" in errors["c0061"]
    assert report.cancelled == Counter({"unsubscribed": 10, "frequency_not_due": 1})
    assert report.sent == 69


@pytest.mark.parametrize("recheck_chunk", [50, 1])
def test_even_the_very_next_customer_in_the_chunk_is_honoured(tmp_path, recheck_chunk):
    """SQLite store: PRAGMA data_version before every send sees the commit; the chunk is re-read."""
    home = make_home(tmp_path, n=20, domain="gmail.com")
    decide(home)
    store = home.store()
    transport = HookedTransport(home.config.outbox_dir,
                                hook=lambda n, env: n == 5 and store.unsubscribe("c0005", "one_click"))
    report, ledger, _ = _run(home, transport, recheck_chunk=recheck_chunk)
    store.close()
    assert ledger["c0004"] == "sent" and ledger["c0005"] == "cancelled" and "c0005" not in transport.started
    assert report.sent == 19


def test_without_change_detection_the_recheck_is_never_older_than_recheck_max_age(tmp_path, monkeypatch):
    """A store without PRAGMA data_version (PostgreSQL): one big chunk, a slow transport —
    preferences are re-read once the last read is 50 ms old."""
    import delivery.send

    monkeypatch.setattr(delivery.send._StoreWatch, "changed", lambda self: False)
    home = make_home(tmp_path, n=40, domain="gmail.com")
    decide(home)
    store = home.store()
    moment = {}
    unsubscribed = [f"c{i:04d}" for i in range(11, 40)]

    def hook(n, envelope):
        if n == 10:
            for cid in unsubscribed:
                store.unsubscribe(cid, "one_click")
            moment["t"] = time.monotonic()

    transport = HookedTransport(home.config.outbox_dir, hook=hook, delay_s=0.01)
    report, ledger, _ = _run(home, transport, recheck_chunk=1000, recheck_max_age_s=0.05, batch_size=100)
    store.close()
    late = [cid for cid in unsubscribed if transport.started.get(cid, 0) > moment["t"] + 0.05 + 0.02]
    assert not late, f"sent more than recheck_max_age after the unsubscribe: {late}"
    assert sum(ledger[c] == "cancelled" for c in unsubscribed) >= len(unsubscribed) - 8


def test_one_bad_message_never_stops_the_batch_and_the_report_says_why(tmp_path):
    home = make_home(tmp_path, n=6, domain="gmail.com")
    decide(home)
    (tmp_path / "emails" / "weekly" / PERIOD.key / "c0003.html").unlink()  # rendered file lost
    with home.con() as con:
        con.execute("UPDATE emails SET subject = 'Hi\r\nBcc: victim@example.com' WHERE customer_id = 'c0004'")
    report, ledger, errors = _run(home, FileTransport(home.config.outbox_dir))
    assert report.sent == 4
    assert ledger["c0003"] == ledger["c0004"] == "failed"
    assert "rendered e-mail unreadable" in errors["c0003"] and "control character" in errors["c0004"]
    text = report.describe()
    assert "4 sent" in text and "failed" in text and "content" in text
    with home.con() as con:
        runs = con.execute("SELECT sent, failed, report->>'transport' FROM delivery_runs").fetchall()
    assert runs == [(4, 2, "file")]


def test_running_again_sends_nothing_twice(tmp_path):
    home = make_home(tmp_path, n=5, domain="gmail.com")
    decide(home)
    transport = FileTransport(home.config.outbox_dir)
    first, _, _ = _run(home, transport)
    decide(home)  # re-deciding after the send: they are already_sent now
    second, ledger, _ = _run(home, transport)
    assert first.sent == 5 and second.sent == 0 and set(ledger.values()) == {"sent"}
    with home.con() as con:
        assert con.execute("SELECT max(attempts) FROM outbox").fetchone()[0] == 1
        assert {r[0] for r in con.execute("SELECT reason FROM eligibility").fetchall()} == {"already_sent"}


def test_the_send_step_enforces_the_domain_cap_against_what_went_out_today(tmp_path):
    """Two campaigns decided the same morning can't push one domain past its cap together."""
    home = make_home(tmp_path, n=15, domain="acme.example", domain_daily_cap=10)
    decide(home)  # 10 send, 5 deferred
    with home.con() as con:  # meanwhile another campaign sent 6 messages to acme.example today
        con.execute("INSERT INTO outbox (campaign, period, customer_id, email, domain, status, attempts, message_id, "
                    "created_at, updated_at, claimed_at) SELECT 'monthly', DATE '2026-11-01', 'm' || i, 'x@acme.example', "
                    "'acme.example', 'sent', 1, 'm' || i, now(), now(), now() AT TIME ZONE 'UTC' FROM range(6) t(i)")
    report, ledger, _ = _run(home, FileTransport(home.config.outbox_dir), domain_cap=10)
    assert report.sent == 4
    assert sum(report.deferred.values()) == 6 and report.eligibility_deferred == 5
    assert Counter(ledger.values()) == Counter({"sent": 10, "pending": 6})  # incl. the 6 monthly ones


def test_messages_can_be_built_in_a_separate_process(tmp_path):
    """delivery.build_processes: the same bytes, content errors reported per message, nothing else changes."""
    from email import message_from_bytes, policy

    home = make_home(tmp_path, n=12, domain="gmail.com")
    decide(home)
    (tmp_path / "emails" / "weekly" / PERIOD.key / "c0003.txt").unlink()
    transport = FileTransport(home.config.outbox_dir, workers=2)
    report, ledger, errors = _run(home, transport, build_processes=1, build_processes_min=0, recheck_chunk=4)
    assert report.sent == 11 and ledger["c0003"] == "failed" and "rendered e-mail unreadable" in errors["c0003"]
    msg = message_from_bytes(transport.path_for("weekly", PERIOD.key, "c0005").read_bytes(), policy=policy.default)
    assert msg["To"] == "Customer c0005 <u5@gmail.com>" and msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Hi c0005" in msg.get_body(("html",)).get_content()
