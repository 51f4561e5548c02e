"""The outbox ledger's state machine: sync with decisions, claim (domain cap), finish, and reconcile from journals."""

import sys
from datetime import datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_support import PERIOD, decide, make_home  # noqa: E402

from delivery import outbox as ledger  # noqa: E402
from delivery.outbox import Journal, Outcome, message_id_for, read_journal, ref_of  # noqa: E402
from delivery.transports.base import LookupItem  # noqa: E402

NOW = datetime(2026, 11, 23, 9, 0)


class FakeTransport:
    name = "fake"

    def __init__(self, found=(), authoritative=True):
        self.found = set(found)
        self.lookup_is_authoritative = authoritative
        self.asked: list[LookupItem] = []

    def lookup(self, items):
        items = list(items)
        self.asked += items
        return {i.message_id: "found" for i in items if i.customer_id in self.found}


def _states(con):
    return dict(con.execute("SELECT customer_id, status FROM outbox ORDER BY customer_id").fetchall())


@pytest.fixture()
def home(tmp_path):
    h = make_home(tmp_path, n=6, domain="gmail.com")
    decide(h)
    return h


def test_sync_writes_pending_rows_with_their_final_message_id_before_any_send(home):
    with home.con() as con:
        assert ledger.sync_with_decisions(con, PERIOD, "valuemail.example") == {"enqueued": 6, "revived": 0, "cancelled": 0}
        rows = con.execute("SELECT customer_id, status, attempts, message_id, domain FROM outbox ORDER BY 1").fetchall()
        assert ledger.sync_with_decisions(con, PERIOD, "valuemail.example")["enqueued"] == 0  # idempotent
    for cid, status, attempts, mid, domain in rows:
        assert status == "pending" and attempts == 0 and domain == "gmail.com"
        assert mid == message_id_for("weekly", PERIOD.key, cid, "valuemail.example")
        assert ref_of(mid) == ledger.message_ref("weekly", PERIOD.key, cid)


def test_pending_rows_follow_changed_decisions_and_come_back_on_opt_in(home):
    with home.con() as con:
        ledger.sync_with_decisions(con, PERIOD, "valuemail.example")
    with home.store() as store:
        store.unsubscribe("c0002", "page")
    decide(home)
    with home.con() as con:
        assert ledger.sync_with_decisions(con, PERIOD, "valuemail.example")["cancelled"] == 1
        assert _states(con)["c0002"] == "cancelled"
    with home.store() as store:
        store.resubscribe("c0002", "page")
    decide(home)
    with home.con() as con:
        assert ledger.sync_with_decisions(con, PERIOD, "valuemail.example")["revived"] == 1
        assert _states(con)["c0002"] == "pending"


def test_claim_marks_sending_and_respects_the_domain_cap_across_campaigns(tmp_path):
    h = make_home(tmp_path, n=8, domain="acme.example", domain_daily_cap=0)
    decide(h)
    with h.con() as con:
        ledger.sync_with_decisions(con, PERIOD, "valuemail.example")
        # Another campaign already sent 3 messages to acme.example today.
        con.execute("INSERT INTO outbox (campaign, period, customer_id, email, domain, status, attempts, message_id, "
                    "created_at, updated_at, claimed_at) SELECT 'monthly', DATE '2026-11-01', 'm' || i, 'x@acme.example', "
                    "'acme.example', 'sent', 1, 'm' || i, ?, ?, ? FROM range(3) t(i)", [NOW, NOW, NOW])
        first = ledger.claim(con, PERIOD, "weekly-2026-11-16-b1", 100, domain_cap=5, cap_exempt=(), now=NOW)
        assert [c.customer_id for c in first] == ["c0000", "c0001"]  # 3 + 2 = the cap of 5
        assert all(c.attempts == 1 for c in first)
        assert ledger.claim(con, PERIOD, "b2", 100, domain_cap=5, cap_exempt=(), now=NOW) == []
        # Exempt domains are never capped; the next day has a fresh budget.
        assert len(ledger.claim(con, PERIOD, "b3", 100, 5, ("acme.example",), now=NOW)) == 6
    h2 = make_home(tmp_path / "two", n=8, domain="acme.example", domain_daily_cap=0)
    decide(h2)
    with h2.con() as con:
        ledger.sync_with_decisions(con, PERIOD, "valuemail.example")
        assert len(ledger.claim(con, PERIOD, "b", 100, 5, (), now=NOW)) == 5
        assert len(ledger.claim(con, PERIOD, "b", 100, 5, (), now=NOW.replace(day=24))) == 3


def test_finish_records_outcomes_and_retries_transient_ones_later(home):
    with home.con() as con:
        ledger.sync_with_decisions(con, PERIOD, "valuemail.example")
        claimed = ledger.claim(con, PERIOD, "b", 100, 20, (), now=NOW)
        ledger.finish(con, PERIOD, "fake", [
            Outcome("c0000", "sent", transport_id="t0"),
            Outcome("c0001", "failed", error_kind="permanent", error="550 no such user"),
            Outcome("c0002", "unknown", error_kind="unknown", error="connection lost"),
            Outcome("c0003", "pending", error_kind="transient", error="451 later", retry_after_s=60),
            Outcome("c0004", "cancelled", error_kind="cancelled", untried=True, error="unsubscribed"),
            Outcome("c0005", "pending", untried=True),
        ], max_attempts=3, now=NOW)
        rows = {r[0]: r[1:] for r in con.execute(
            "SELECT customer_id, status, attempts, transport_id, not_before, sent_at FROM outbox").fetchall()}
    assert len(claimed) == 6
    assert rows["c0000"][:3] == ("sent", 1, "t0") and rows["c0000"][4] == NOW
    assert rows["c0001"][0] == "failed" and rows["c0002"][0] == "unknown"
    assert rows["c0003"][0] == "pending" and rows["c0003"][3] == datetime(2026, 11, 23, 9, 1)
    assert rows["c0004"][:2] == ("cancelled", 0) and rows["c0005"][:2] == ("pending", 0)  # untried: claim not counted


def _crash(con, journal_dir, records, transport_name="fake"):
    """Claim everything, write journal records as a dying process would, and stop (no finish)."""
    ledger.sync_with_decisions(con, PERIOD, "valuemail.example")
    batch = f"{ledger.batch_prefix(PERIOD)}x"
    journal = Journal(journal_dir, batch, transport_name)
    ledger.claim(con, PERIOD, batch, 100, 20, (), now=NOW)
    for rec in records:
        journal.write(*rec)
    return journal.path


def test_reconcile_resolves_each_journal_case(home, tmp_path):
    jdir = tmp_path / "journal"
    with home.con() as con:
        path = _crash(con, jdir, [
            ("B", "c0000"), ("A", "c0000", "250 queued as 1"),
            ("B", "c0001"), ("F", "c0001", "permanent", "550"),
            ("B", "c0002"), ("F", "c0002", "transient", "451"),
            ("C", "c0003", "unsubscribed"),
            ("B", "c0004"),                       # in flight when killed: found at the transport
            # c0005: no record at all -> never handed over
        ])
        transport = FakeTransport(found={"c0004"})
        report = ledger.reconcile(con, PERIOD, transport, jdir)
        states = _states(con)
    assert states == {"c0000": "sent", "c0001": "failed", "c0002": "pending", "c0003": "cancelled",
                      "c0004": "sent", "c0005": "pending"}
    assert [i.customer_id for i in transport.asked] == ["c0004"]  # only the in-doubt one is looked up
    assert report.in_doubt == 1 and report.found == 1
    assert not path.exists()  # the ledger is authoritative again: journal removed


def test_in_doubt_and_not_found(home, tmp_path):
    jdir = tmp_path / "journal"
    with home.con() as con:
        _crash(con, jdir, [("B", "c0000"), ("B", "c0001"), ("U", "c0001", "connection lost")])
        ledger.reconcile(con, PERIOD, FakeTransport(authoritative=True), jdir)
        assert _states(con)["c0000"] == "pending" and _states(con)["c0001"] == "pending"  # proven absent: resend


def test_in_doubt_without_an_authoritative_lookup_stays_unknown_and_is_looked_up_again(home, tmp_path):
    jdir = tmp_path / "journal"
    with home.con() as con:
        _crash(con, jdir, [("B", "c0000")])
        ledger.reconcile(con, PERIOD, FakeTransport(authoritative=False), jdir)
        assert _states(con)["c0000"] == "unknown"
        ledger.reconcile(con, PERIOD, FakeTransport(authoritative=False), jdir)
        assert _states(con)["c0000"] == "unknown"  # still not re-sent
        # Evidence arrives later (e.g. the SES Send event): now it is 'sent'.
        report = ledger.reconcile(con, PERIOD, FakeTransport(authoritative=False), jdir,
                                  events_lookup=lambda ids: {cid: "ses-1" for cid in ids if cid == "c0000"})
        assert _states(con)["c0000"] == "sent" and report.found == 1


def test_a_missing_journal_puts_the_whole_batch_in_doubt(home, tmp_path):
    jdir = tmp_path / "journal"
    with home.con() as con:
        path = _crash(con, jdir, [("A", "c0000", "x")])
        path.unlink()
        ledger.reconcile(con, PERIOD, FakeTransport(found={"c0001"}, authoritative=False), jdir)
        states = _states(con)
    assert states["c0001"] == "sent" and {states[c] for c in states if c != "c0001"} == {"unknown"}


def test_a_journal_of_another_transport_is_not_trusted_for_lookups(home, tmp_path):
    jdir = tmp_path / "journal"
    with home.con() as con:
        _crash(con, jdir, [("B", "c0000")], transport_name="ses")
        transport = FakeTransport(authoritative=True)  # 'fake' cannot vouch for what SES did
        ledger.reconcile(con, PERIOD, transport, jdir)
        assert _states(con)["c0000"] == "unknown" and transport.asked == []


def test_reconcile_waits_the_grace_period_for_in_flight_messages(home, tmp_path):
    jdir = tmp_path / "journal"
    slept = []
    with home.con() as con:
        _crash(con, jdir, [("B", "c0000")])
        ledger.reconcile(con, PERIOD, FakeTransport(), jdir, grace_s=30, sleep=slept.append)
    assert slept and 29 < slept[0] <= 30


def test_journal_ignores_a_torn_last_line(tmp_path):
    j = Journal(tmp_path, "b", "smtp")
    j.write("B", "c1")
    j.write("A", "c1", "ok")
    j.close(remove=False)
    with open(j.path, "ab") as fh:
        fh.write(b'["B","c2"')  # power cut mid-write
    transport, records = read_journal(j.path)
    assert transport == "smtp" and records == {"c1": ("A", "ok")}
