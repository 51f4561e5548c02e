"""The SMTP transport against a real aiosmtpd server on 127.0.0.1, in its own process.

Persistent connections, STARTTLS + AUTH, a permanent refusal that fails one message only, a
temporary refusal retried with backoff then given up, and a server that is down or refuses
our credentials stopping the run cleanly with nothing lost.
"""

import sqlite3
import subprocess
import sys
from collections import Counter
from email import message_from_bytes, policy
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_support import PERIOD, decide, make_home, smtp_settings, smtp_sink  # noqa: E402

from delivery.send import SendSettings, deliver_period  # noqa: E402
from delivery.transports.base import Envelope, TransportUnavailable  # noqa: E402
from delivery.transports.smtp import SMTPSettings, SMTPTransport, lookup_text_log  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("smtp")]


def _send(home, **smtp):
    transport = SMTPTransport(SMTPSettings.from_config(smtp, environ={"VALUEMAIL_SMTP_PASSWORD": smtp.pop("password", "")}))
    with home.con() as con:
        report = deliver_period(con, home.config, PERIOD, transport=transport)
        ledger = dict(con.execute("SELECT customer_id, status FROM outbox").fetchall())
    return report, ledger


def _peers(sink) -> Counter:
    con = sqlite3.connect(sink.db)
    try:
        return Counter(r[0] for r in con.execute("SELECT peer FROM received"))
    finally:
        con.close()


def test_messages_go_over_a_few_persistent_connections(tmp_path):
    home = make_home(tmp_path, n=60, domain="gmail.com", recheck_chunk=10)
    decide(home)
    with smtp_sink(tmp_path, "--store", str(tmp_path / "inbox"), "--pipelining", "--fast-data") as sink:
        report, ledger = _send(home, **smtp_settings(sink, connections=3))
        peers = _peers(sink)
    assert report.sent == 60 and set(ledger.values()) == {"sent"}
    assert 1 < len(peers) <= 3 and min(peers.values()) > 1, peers  # at most 3 connections, each reused
    raw = sorted((tmp_path / "inbox").glob("*.eml"))[0].read_bytes()
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg["List-Unsubscribe"].startswith("<https://") and msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Message-ID"].startswith("<vm.weekly.20261116.") and msg["List-Id"]
    assert msg.get_content_type() == "multipart/alternative"


def test_reconnects_after_max_messages_per_connection(tmp_path):
    home = make_home(tmp_path, n=10, domain="gmail.com")
    decide(home)
    with smtp_sink(tmp_path) as sink:
        report, _ = _send(home, **smtp_settings(sink, connections=1, max_messages_per_connection=4))
        assert report.sent == 10 and len(_peers(sink)) == 3


@pytest.mark.parametrize("pipelining", [False, True])
def test_a_permanent_refusal_fails_that_message_only(tmp_path, pipelining):
    home = make_home(tmp_path, n=12, domain="gmail.com", emails={"c0003": "rejectme@gmail.com", "c0009": "rejectyou@gmail.com"})
    decide(home)
    with smtp_sink(tmp_path, "--reject-prefix", "reject", *(["--pipelining"] if pipelining else [])) as sink:
        report, ledger = _send(home, **smtp_settings(sink))
        assert len(sink.received()) == 10
    assert report.sent == 10 and report.failed == Counter({"permanent: recipient refused": 2})
    assert ledger["c0003"] == ledger["c0009"] == "failed"
    with home.con() as con:
        error = con.execute("SELECT last_error FROM outbox WHERE customer_id = 'c0003'").fetchone()[0]
    assert "550" in error


def test_a_temporary_refusal_is_retried_with_backoff_then_given_up(tmp_path):
    home = make_home(tmp_path, n=4, domain="gmail.com", emails={"c0001": "deferme@gmail.com"},
                     max_attempts=2, retry_backoff_s=0.2, max_retry_wait_s=5)
    decide(home)
    with smtp_sink(tmp_path, "--defer-prefix", "defer", "--pipelining") as sink:
        report, ledger = _send(home, **smtp_settings(sink))
    assert report.sent == 3 and report.retried == 1
    assert ledger["c0001"] == "failed"
    with home.con() as con:
        attempts, error = con.execute("SELECT attempts, last_error FROM outbox WHERE customer_id = 'c0001'").fetchone()
    assert attempts == 2 and "gave up after 2 attempts" in error and "451" in error


def test_server_down_stops_the_run_and_loses_nothing(tmp_path):
    home = make_home(tmp_path, n=5, domain="gmail.com")
    decide(home)
    from test_delivery_support import REPO  # noqa: F401
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    report, ledger = _send(home, host="127.0.0.1", port=port, timeout_s=2)
    assert report.stopped and "cannot connect" in report.stopped
    assert set(ledger.values()) == {"pending"} and report.sent == 0
    with home.con() as con:
        assert con.execute("SELECT max(attempts) FROM outbox").fetchone()[0] == 0  # untried claims don't count


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def test_starttls_and_auth(tmp_path, tls_files):
    cert, key = tls_files
    home = make_home(tmp_path, n=6, domain="gmail.com")
    decide(home)
    with smtp_sink(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), "--auth", "valuemail:s3cret") as sink:
        report, ledger = _send(home, **smtp_settings(sink, security="starttls", username="valuemail", password="s3cret",
                                                       ca_file=str(cert)))
        assert report.sent == 6 and len(sink.received()) == 6


def test_wrong_password_or_no_tls_stops_the_run(tmp_path, tls_files):
    cert, key = tls_files
    home = make_home(tmp_path, n=3, domain="gmail.com")
    decide(home)
    with smtp_sink(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), "--auth", "valuemail:s3cret") as sink:
        report, ledger = _send(home, **smtp_settings(sink, security="starttls", username="valuemail", password="wrong",
                                                       ca_file=str(cert)))
        assert report.stopped and "authentication" in report.stopped
        report, ledger = _send(home, **smtp_settings(sink, security="none"))
        assert report.stopped and "refuses our sender" in report.stopped
        assert set(ledger.values()) == {"pending"} and sink.received() == []


def test_untrusted_certificate_is_refused(tmp_path, tls_files):
    cert, key = tls_files
    home = make_home(tmp_path, n=1, domain="gmail.com")
    decide(home)
    with smtp_sink(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key)) as sink:
        session = SMTPTransport(SMTPSettings.from_config(smtp_settings(sink, security="starttls"))).session()
        with pytest.raises(TransportUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            session.send(Envelope("a@valuemail.example", "b@gmail.com", "<x@y>", "r", "weekly", PERIOD.key, "c"),
                         b"Subject: x\r\n\r\nbody\r\n")


def test_postfix_style_log_lookup(tmp_path):
    log = tmp_path / "mail.log"
    log.write_text("Nov 23 08:00:01 relay postfix/cleanup[4242]: 4F9D8C2A1B: message-id=<vm.a@valuemail.example>\n"
                   "Nov 23 08:00:02 relay postfix/qmgr[99]: 4F9D8C2A1B: from=<hello@valuemail.example>, size=2301\n")
    assert lookup_text_log(log, {"<vm.a@valuemail.example>", "<vm.b@valuemail.example>"}) == {
        "<vm.a@valuemail.example>": "found in the server log"}


def test_settings_from_config_validate():
    with pytest.raises(ValueError, match="security"):
        SMTPSettings.from_config({"security": "ssl3"})
    s = SMTPSettings.from_config({"security": "tls", "password_env": "X"}, environ={"X": "pw"})
    assert s.port == 465 and s.password == "pw"
    assert SendSettings().batch_size == 1000
