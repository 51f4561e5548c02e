"""The SES transport: raw sends against moto's SES server; throttling, errors and pacing via botocore's Stubber."""

import json
import sys
import urllib.request
from email import message_from_bytes, policy
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_support import PERIOD, decide, make_home  # noqa: E402

from delivery.send import deliver_period  # noqa: E402
from delivery.transports.base import Envelope, OutcomeUnknown, PermanentFailure, TransientFailure, TransportUnavailable  # noqa: E402
from delivery.transports.ses import Pacer, SESSettings, SESTransport, account_send_rate, backoff_delay, make_client  # noqa: E402

ENVELOPE = Envelope("hello@valuemail.example", "anna@gmail.com", "<vm.x@valuemail.example>", "a" * 32, "weekly",
                    PERIOD.key, "c0001")


@pytest.fixture()
def moto_ses(moto_server):
    """The shared moto server (tests/conftest.py), with our sending domain verified."""
    client = boto3.client("sesv2", endpoint_url=moto_server, region_name="eu-west-1")
    try:
        client.create_email_identity(EmailIdentity="valuemail.example")  # SES sends only from verified identities
    except client.exceptions.AlreadyExistsException:
        pass
    return moto_server


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(key, value)


def test_raw_messages_reach_moto_with_our_headers_and_are_recorded_in_the_ledger(tmp_path, moto_ses):
    home = make_home(tmp_path, n=5, domain="gmail.com", transport="ses",
                     ses={"endpoint_url": moto_ses, "region": "eu-west-1", "configuration_set": "valuemail-events",
                          "max_send_rate": 50})
    decide(home)
    with home.con() as con:
        report = deliver_period(con, home.config, PERIOD)
        ledger = con.execute("SELECT customer_id, status, transport, transport_id, message_id FROM outbox ORDER BY 1").fetchall()
    assert report.sent == 5
    data = json.load(urllib.request.urlopen(f"{moto_ses}/moto-api/data.json"))
    raw = {m["id"]: m for m in data["ses"]["RawMessage"]}
    for cid, status, transport, tid, message_id in ledger:
        assert status == "sent" and transport == "ses" and tid in raw
        msg = message_from_bytes(raw[tid]["raw_data"].encode(), policy=policy.default)
        assert msg["Message-ID"] == message_id and msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["List-Unsubscribe"].startswith("<https://")
        assert msg.get_content_type() == "multipart/alternative"


def test_an_unverified_sender_stops_the_run_instead_of_failing_every_message(tmp_path, moto_ses):
    home = make_home(tmp_path, n=3, domain="gmail.com", transport="ses",
                     ses={"endpoint_url": moto_ses, "region": "eu-west-1", "max_send_rate": 50})
    decide(home)
    settings = SESSettings(endpoint_url=moto_ses, region="eu-west-1", max_send_rate=50)
    transport = SESTransport(settings)
    with home.con() as con:
        import delivery.messages as messages

        old = messages.MessageSource.__init__

        def unverified(self, *a, **kw):
            old(self, *a, **kw)
            self.from_address = self.envelope_from = "hello@not-verified.example"

        messages.MessageSource.__init__ = unverified
        try:
            report = deliver_period(con, home.config, PERIOD, transport=transport)
        finally:
            messages.MessageSource.__init__ = old
    assert report.sent == 0 and not report.failed
    assert report.stopped and "sender identity is not verified" in report.stopped
    with home.con() as con:  # nothing lost: every message is still pending, ready for the fixed config
        assert {r[0] for r in con.execute("SELECT status FROM outbox").fetchall()} == {"pending"}


# -- Stubber: what we ask SES, and what we do with its answers -----------------------------------------
def _stubbed(rate=1000.0):
    client = make_client(SESSettings(region="eu-west-1"))
    stub = Stubber(client)
    sleeps: list[float] = []
    transport = SESTransport(SESSettings(region="eu-west-1", configuration_set="vm-events", max_throttle_retries=3,
                                         backoff_base_s=0.5, backoff_max_s=4),
                             client=client, pacer=Pacer(rate, clock=lambda: 0.0, sleep=lambda s: None),
                             sleep=sleeps.append)
    return client, stub, transport, sleeps


EXPECTED = {
    "FromEmailAddress": "hello@valuemail.example",
    "Destination": {"ToAddresses": ["anna@gmail.com"]},
    "Content": {"Raw": {"Data": ANY}},
    "ConfigurationSetName": "vm-events",
    "EmailTags": [{"Name": "vm_ref", "Value": "a" * 32}, {"Name": "campaign", "Value": "weekly"},
                  {"Name": "period", "Value": PERIOD.key}],
}


def test_sdk_retries_are_off_for_sends():
    """One HTTP request per send, even on a 500 (botocore would retry it: a possible duplicate).

    Counted at a real HTTP endpoint.  ``{"max_attempts": 1}`` would make two requests:
    botocore reads it as one *retry* (total 2) — shown here too.
    """
    import http.server
    import threading

    from botocore.config import Config

    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(self.path)
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = b'{"message": "internal"}'
            self.send_response(500)
            self.send_header("x-amzn-ErrorType", "InternalFailure")
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        transport = SESTransport(SESSettings(endpoint_url=url, region="eu-west-1", max_send_rate=100))
        assert transport.client.meta.config.retries == {"total_max_attempts": 1, "mode": "standard"}
        with pytest.raises(OutcomeUnknown):
            transport.send(ENVELOPE, b"raw")
        assert len(hits) == 1
        hits.clear()
        naive = boto3.client("sesv2", endpoint_url=url, region_name="eu-west-1",
                             config=Config(retries={"max_attempts": 1, "mode": "standard"}))
        with pytest.raises(Exception):
            naive.send_email(Content={"Raw": {"Data": b"raw"}})
        assert len(hits) == 2  # the pitfall: "max_attempts": 1 still retries once
    finally:
        server.shutdown()


def test_throttling_is_retried_with_backoff_then_succeeds():
    client, stub, transport, sleeps = _stubbed()
    for _ in range(2):
        stub.add_client_error("send_email", service_error_code="TooManyRequestsException",
                              service_message="Maximum sending rate exceeded.", http_status_code=429,
                              expected_params=EXPECTED)
    stub.add_response("send_email", {"MessageId": "ses-123"}, EXPECTED)
    with stub:
        assert transport.send(ENVELOPE, b"raw") == "ses-123"
    stub.assert_no_pending_responses()
    assert transport.throttled == 2
    backoffs = sleeps
    assert len(backoffs) == 2 and backoffs[0] <= 0.5 and backoffs[1] <= 1.0  # full jitter, doubling caps


def test_throttling_that_does_not_stop_becomes_a_transient_failure():
    client, stub, transport, _ = _stubbed()
    for _ in range(4):
        stub.add_client_error("send_email", service_error_code="Throttling", service_message="Rate exceeded",
                              http_status_code=400)
    with stub, pytest.raises(TransientFailure, match="kept throttling"):
        transport.send(ENVELOPE, b"raw")


@pytest.mark.parametrize("code,status,error", [
    ("MessageRejected", 400, PermanentFailure),
    ("BadRequestException", 400, PermanentFailure),
    ("AccountSuspendedException", 400, TransportUnavailable),
    ("SendingPausedException", 400, TransportUnavailable),
    ("InternalFailure", 500, OutcomeUnknown),
])
def test_errors_are_classified(code, status, error):
    client, stub, transport, _ = _stubbed()
    stub.add_client_error("send_email", service_error_code=code, service_message="x", http_status_code=status)
    with stub, pytest.raises(error):
        transport.send(ENVELOPE, b"raw")


def test_daily_quota_stops_the_run():
    client, stub, transport, _ = _stubbed()
    stub.add_client_error("send_email", service_error_code="Throttling", service_message="Daily message quota exceeded.",
                          http_status_code=400)
    with stub, pytest.raises(TransportUnavailable, match="daily sending quota"):
        transport.send(ENVELOPE, b"raw")


def test_pacing_follows_the_accounts_max_send_rate():
    client = make_client(SESSettings(region="eu-west-1"))
    stub = Stubber(client)
    stub.add_response("get_account", {"SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 0.0}})
    with stub:
        assert account_send_rate(client) == 14.0
    now = [0.0]
    waits: list[float] = []
    pacer = Pacer(14.0, clock=lambda: now[0], sleep=lambda s: (waits.append(s), now.__setitem__(0, now[0] + s)))
    for _ in range(15):
        pacer.acquire()
    assert now[0] == pytest.approx(14 / 14.0)  # 15 calls take 14 intervals: exactly the max rate
    assert all(w == pytest.approx(1 / 14.0) for w in waits)


def test_transport_asks_get_account_when_no_rate_is_configured():
    client = make_client(SESSettings(region="eu-west-1"))
    stub = Stubber(client)
    stub.add_response("get_account", {"SendQuota": {"Max24HourSend": 200.0, "MaxSendRate": 3.0, "SentLast24Hours": 0.0}})
    with stub:
        transport = SESTransport(SESSettings(region="eu-west-1"), client=client)
    assert transport.pacer.rate == pytest.approx(3.0)


def test_a_permanent_error_for_one_recipient_never_stops_the_batch(tmp_path):
    home = make_home(tmp_path, n=4, domain="gmail.com")
    decide(home)
    client, stub, transport, _ = _stubbed()
    stub.add_response("send_email", {"MessageId": "ses-0"})
    stub.add_client_error("send_email", service_error_code="MessageRejected", service_message="Email address is not verified.",
                          http_status_code=400)
    stub.add_response("send_email", {"MessageId": "ses-2"})
    stub.add_response("send_email", {"MessageId": "ses-3"})
    transport.workers = 1
    with stub, home.con() as con:
        report = deliver_period(con, home.config, PERIOD, transport=transport)
        ledger = dict(con.execute("SELECT customer_id, status FROM outbox").fetchall())
    assert report.sent == 3 and sum(report.failed.values()) == 1
    assert ledger == {"c0000": "sent", "c0001": "failed", "c0002": "sent", "c0003": "sent"}


def test_backoff_delay_is_bounded():
    import random

    rng = random.Random(1)
    assert all(0 <= backoff_delay(i, 0.2, 20, rng) <= min(20, 0.2 * 2 ** i) for i in range(12))
