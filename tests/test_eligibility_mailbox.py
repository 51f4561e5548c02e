"""One mailbox, one e-mail: addresses compared normalised; suppressions apply to the mailbox (issue #11 item 5)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_support import PERIOD, decide, make_home  # noqa: E402

from delivery.send import deliver_period  # noqa: E402

DUPES = {"c0001": "dup@gmail.com", "c0002": "DUP@Gmail.com", "c0003": " dup@gmail.com "}


def _decisions(home) -> dict[str, tuple[str, str]]:
    with home.con() as con:
        return {cid: (reason, detail) for cid, reason, detail in con.execute(
            "SELECT customer_id, reason, detail FROM eligibility WHERE campaign = ? AND period = ?",
            [PERIOD.campaign, PERIOD.start]).fetchall()}


def _reasons(home) -> dict[str, str]:
    return {cid: reason for cid, (reason, _) in _decisions(home).items()}


def test_one_message_per_mailbox_the_lowest_id_wins_and_dots_and_plus_tags_are_other_mailboxes(tmp_path):
    home = make_home(tmp_path, n=6, domain="gmail.com",
                     emails={**DUPES, "c0004": "dup+news@gmail.com", "c0005": "d.up@gmail.com"})
    decide(home)
    got = _decisions(home)
    assert {cid: r for cid, (r, _) in got.items()} == {
        "c0000": "send", "c0001": "send", "c0002": "duplicate_address", "c0003": "duplicate_address",
        "c0004": "send", "c0005": "send"}
    assert "c0001" in got["c0002"][1] and "mailbox" in got["c0002"][1]
    with home.con() as con:
        report = deliver_period(con, home.config, PERIOD)
        mailed = [r[0] for r in con.execute("SELECT lower(trim(email)) FROM outbox WHERE status = 'sent'").fetchall()]
    assert report.sent == 4 and mailed.count("dup@gmail.com") == 1


def test_the_mailbox_goes_to_the_first_customer_who_would_be_sent(tmp_path):
    home = make_home(tmp_path, n=4, domain="gmail.com", emails=DUPES, active={"c0000", "c0002", "c0003"})
    decide(home)
    assert _reasons(home) == {"c0000": "send", "c0001": "inactive_in_period", "c0002": "send",
                              "c0003": "duplicate_address"}


def test_unsubscribing_one_customer_unsubscribes_the_mailbox(tmp_path):
    home = make_home(tmp_path, n=4, domain="gmail.com", emails=DUPES)
    with home.store() as store:
        store.unsubscribe("c0003", "one_click")
        store.suppress("c0000", "hard_bounce", "bounce")
    decide(home)
    got = _decisions(home)
    assert {cid: r for cid, (r, _) in got.items()} == {
        "c0000": "bounced", "c0001": "unsubscribed", "c0002": "unsubscribed", "c0003": "unsubscribed"}
    assert "c0003" in got["c0001"][1] and "c0003" not in got["c0003"][1]


def test_a_mailbox_that_already_has_the_message_gets_no_second_one(tmp_path):
    home = make_home(tmp_path, n=2, domain="gmail.com", emails={"c0001": "dup@gmail.com"})
    decide(home)
    with home.con() as con:
        assert deliver_period(con, home.config, PERIOD).sent == 2
        # a customer with the same mailbox and a lower id appears later (e.g. a second account)
        con.execute("INSERT INTO customers SELECT * REPLACE ('a0001' AS customer_id, 'Dup@GMAIL.com' AS email) "
                    "FROM customers WHERE customer_id = 'c0001'")
        con.execute("INSERT INTO customer_metrics SELECT campaign, period, 'a0001', tasks, minutes_saved, money_saved "
                    "FROM customer_metrics WHERE customer_id = 'c0001'")
    decide(home)
    got = _decisions(home)
    assert got["a0001"][0] == "duplicate_address" and "c0001" in got["a0001"][1]
    assert got["c0001"][0] == "already_sent"


def test_the_send_time_recheck_honours_an_unsubscribe_from_another_customer_of_the_mailbox(tmp_path):
    home = make_home(tmp_path, n=4, domain="gmail.com", emails=DUPES)
    decide(home)  # c0001 is the one who gets the mailbox's message
    with home.store() as store:
        store.unsubscribe("c0002", "one_click")  # ... then another account of that mailbox unsubscribes
        with home.con() as con:
            report = deliver_period(con, home.config, PERIOD, store=store)
            ledger = dict(con.execute("SELECT customer_id, status FROM outbox").fetchall())
    assert ledger == {"c0000": "sent", "c0001": "cancelled"}
    assert dict(report.cancelled) == {"unsubscribed": 1}



def test_the_independent_recheck_catches_a_send_decision_for_a_mailbox_suppressed_before_it(tmp_path):
    from datetime import datetime, timedelta

    from delivery.prefs import mailbox_siblings, suppressed_before

    home = make_home(tmp_path, n=4, domain="gmail.com", emails=DUPES)
    with home.store() as store, home.con() as con:
        store.unsubscribe("c0002", "one_click")
        later = datetime.utcnow() + timedelta(minutes=1)   # a (faulty) send decision made after the unsubscribe
        earlier = datetime.utcnow() - timedelta(minutes=1)  # one made before it: the send step cancels that one
        siblings = mailbox_siblings(con)
        assert suppressed_before(store, {"c0001": later, "c0000": later}, "weekly", siblings) == (
            [("c0001", "unsubscribed")], 0)
        assert suppressed_before(store, {"c0001": earlier}, "weekly", siblings) == ([], 1)
