"""Engagement ingest: SES event-publishing JSON (as SNS and Firehose deliver it) → email_events, suppressions, sunset."""

import gzip
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_support import PERIOD, decide, make_home  # noqa: E402

from delivery.engagement import ingest_engagement, iter_json_values, iter_records, local_blobs, normalise  # noqa: E402
from delivery.send import deliver_period  # noqa: E402
from valuemail.periods import Period  # noqa: E402

SENT_AT = "2026-11-23T08:00:00.000Z"


# -- fixtures: records shaped exactly as SES event publishing writes them ---------------------------
def _mail(ref: str, to: str, ses_id: str) -> dict:
    return {
        "timestamp": SENT_AT,
        "source": "valuemail <hello@valuemail.example>",
        "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/valuemail.example",
        "sendingAccountId": "123456789012",
        "messageId": ses_id,
        "destination": [to],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": "valuemail <hello@valuemail.example>"},
            {"name": "To", "value": to},
            {"name": "Subject", "value": "Your week"},
            {"name": "X-Valuemail-Ref", "value": ref},
        ],
        "commonHeaders": {"from": ["valuemail <hello@valuemail.example>"], "to": [to], "messageId": ses_id,
                          "subject": "Your week"},
        "tags": {
            "ses:operation": ["SendEmail"], "ses:configuration-set": ["valuemail"], "ses:source-ip": ["192.0.2.10"],
            "ses:from-domain": ["valuemail.example"], "ses:caller-identity": ["valuemail-sender"],
            "vm_ref": [ref], "campaign": ["weekly"], "period": [PERIOD.key],
        },
    }


def _records(ref: str, to: str, ses_id: str, *kinds: str, bounce_type: str = "Permanent") -> list[dict]:
    mail = _mail(ref, to, ses_id)
    out = []
    for kind in kinds:
        if kind == "Send":
            out.append({"eventType": "Send", "mail": mail, "send": {}})
        elif kind == "Delivery":
            out.append({"eventType": "Delivery", "mail": mail, "delivery": {
                "timestamp": "2026-11-23T08:00:01.100Z", "processingTimeMillis": 1100, "recipients": [to],
                "smtpResponse": "250 2.6.0 Message received", "reportingMTA": "a8-70.smtp-out.amazonses.com",
                "remoteMtaIp": "203.0.113.1"}})
        elif kind == "Open":
            out.append({"eventType": "Open", "mail": mail, "open": {
                "ipAddress": "192.0.2.1", "timestamp": "2026-11-23T09:12:00.000Z",
                "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X)"}})
        elif kind == "Click":
            out.append({"eventType": "Click", "mail": mail, "click": {
                "ipAddress": "192.0.2.1", "link": "https://valuemail.example/app", "linkTags": {"cta": ["app"]},
                "timestamp": "2026-11-23T09:13:00.000Z", "userAgent": "Mozilla/5.0"}})
        elif kind == "Bounce":
            out.append({"eventType": "Bounce", "mail": mail, "bounce": {
                "bounceType": bounce_type, "bounceSubType": "General" if bounce_type == "Permanent" else "MailboxFull",
                "bouncedRecipients": [{"emailAddress": to, "action": "failed", "status": "5.1.1",
                                       "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
                "timestamp": "2026-11-23T08:00:02.000Z", "feedbackId": "0100019a-bounce-000000",
                "reportingMTA": "dsn; mta.acme.example"}})
        elif kind == "Complaint":
            out.append({"eventType": "Complaint", "mail": mail, "complaint": {
                "feedbackId": "0100019a-complaint-000000", "complaintSubType": None,
                "complainedRecipients": [{"emailAddress": to}], "timestamp": "2026-11-23T10:00:00.000Z",
                "userAgent": "Yahoo!-Mail-Feedback/2.0", "complaintFeedbackType": "abuse",
                "arrivalDate": "2026-11-23T09:59:00.000Z"}})
        elif kind == "Subscription":
            out.append({"eventType": "Subscription", "mail": mail, "subscription": {
                "contactList": "valuemail", "timestamp": "2026-11-23T11:00:00.000Z", "source": "UnsubscribeHeader",
                "newTopicPreferences": {"unsubscribeAll": True, "topicSubscriptionStatus": [
                    {"topicName": "value-emails", "subscriptionStatus": "OptOut"}]},
                "oldTopicPreferences": {"unsubscribeAll": False, "topicSubscriptionStatus": [
                    {"topicName": "value-emails", "subscriptionStatus": "OptIn"}]}}})
    return out


def _sns(record: dict) -> dict:
    return {"Type": "Notification", "MessageId": "a1b2c3d4-sns", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events",
            "Subject": "Amazon SES Email Event Notification", "Message": json.dumps(record),
            "Timestamp": "2026-11-23T08:00:03.000Z", "SignatureVersion": "1"}


@pytest.fixture()
def sent_home(tmp_path, monkeypatch):
    home = make_home(tmp_path, n=8, domain="gmail.com")
    decide(home)
    with home.con() as con:
        deliver_period(con, home.config, PERIOD)
        rows = con.execute("SELECT customer_id, email, split_part(split_part(message_id, '@', 1), '.', 4) FROM outbox "
                           "ORDER BY customer_id").fetchall()
    return home, {cid: (email, ref) for cid, email, ref in rows}


def _write_events(home, refs, name="firehose", gz=False, sns=False):
    (email0, ref0), (email1, ref1), (email2, ref2), (email3, ref3), (email4, ref4) = (refs[f"c000{i}"] for i in range(5))
    records = (
        _records(ref0, email0, "ses-0", "Send", "Delivery", "Open", "Click")
        + _records(ref1, email1, "ses-1", "Send", "Bounce")
        + _records(ref2, email2, "ses-2", "Send", "Delivery", "Complaint")
        + _records(ref3, email3, "ses-3", "Send", "Delivery", "Subscription")
        + _records(ref4, email4, "ses-4", "Send", "Bounce", bounce_type="Transient")
    )
    folder = home.path / "engagement"
    folder.mkdir(exist_ok=True)
    if sns:
        data = ("\n".join(json.dumps(_sns(r)) for r in records)).encode()
    else:  # Firehose concatenates records without a separator
        data = "".join(json.dumps(r) for r in records).encode()
    path = folder / (name + (".gz" if gz else ".json"))
    path.write_bytes(gzip.compress(data) if gz else data)
    return len(records)


def _ingest(home, force=False):
    with home.con() as con, home.store() as store:
        return ingest_engagement(con, local_blobs(home.path / "engagement"), store=store, force=force)


def test_firehose_records_become_events_and_suppressions(sent_home):
    home, refs = sent_home
    n = _write_events(home, refs)
    summary = _ingest(home)
    assert summary.records == n and summary.unmatched == 0, summary.describe()
    assert summary.inserted == {"send": 5, "delivery": 3, "open": 1, "click": 1, "bounce": 2, "complaint": 1, "subscription": 1}
    assert summary.suppressions == {"hard_bounce": 1, "complaint": 1, "unsubscribed": 1}
    with home.con() as con:
        rows = con.execute("SELECT customer_id, event_type, bounce_type, campaign, period FROM email_events "
                           "WHERE event_type IN ('bounce', 'click') ORDER BY customer_id").fetchall()
    assert rows == [("c0000", "click", None, "weekly", PERIOD.start), ("c0001", "bounce", "Permanent", "weekly", PERIOD.start),
                    ("c0004", "bounce", "Transient", "weekly", PERIOD.start)]
    with home.store() as store:
        assert store.state("c0001").suppression == "hard_bounce"
        assert store.state("c0002").suppression == "complaint"
        assert store.state("c0003").suppression == "unsubscribed"
        assert store.state("c0004").suppression is None  # a soft bounce is not a suppression


def test_sns_envelopes_and_gzip_are_read_too(sent_home):
    home, refs = sent_home
    n = _write_events(home, refs, name="sns", sns=True)
    assert _ingest(home).records == n
    _write_events(home, refs, name="again", gz=True)  # same events, another file: all duplicates
    again = _ingest(home)
    assert again.records == n and sum(again.inserted.values()) == 0 and again.duplicates == n


def test_reingest_adds_nothing_and_never_undoes_an_opt_in(sent_home):
    home, refs = sent_home
    _write_events(home, refs)
    _ingest(home)
    assert _ingest(home).skipped_files == 1  # same file: skipped
    with home.store() as store:
        store.resubscribe("c0001", "page")  # the customer fixed their mailbox and opted in again
    forced = _ingest(home, force=True)
    assert sum(forced.inserted.values()) == 0 and forced.suppressions == {}
    with home.store() as store:
        assert store.state("c0001").suppression is None
    with home.con() as con:
        assert con.execute("SELECT count(*) FROM email_events").fetchone()[0] == 14


def test_suppressions_from_events_decide_the_next_period(sent_home):
    home, refs = sent_home
    _write_events(home, refs)
    _ingest(home)
    nxt = PERIOD.next()
    with home.con() as con:
        con.execute("INSERT INTO customer_metrics SELECT campaign, ?, customer_id, tasks, minutes_saved, money_saved "
                    "FROM customer_metrics WHERE period = ?", [nxt.start, PERIOD.start])
    decide(home, period=nxt)
    with home.con() as con:
        reasons = dict(con.execute("SELECT customer_id, reason FROM eligibility WHERE period = ?", [nxt.start]).fetchall())
    assert (reasons["c0001"], reasons["c0002"], reasons["c0003"], reasons["c0004"]) == (
        "bounced", "complained", "unsubscribed", "send")


def test_parsing_tolerates_arrays_ndjson_and_notification_type():
    values = list(iter_json_values(b'[{"eventType":"Send","mail":{"messageId":"x"}}]\n{"notificationType":"Delivery",'
                                   b'"mail":{"messageId":"y"},"delivery":{"timestamp":"2026-11-23T08:00:00Z"}}'))
    records = [r for v in values for r in iter_records(v)]
    assert [r.get("eventType") or r.get("notificationType") for r in records] == ["Send", "Delivery"]
    rows = normalise(records[1])
    assert rows[0]["event_type"] == "delivery" and rows[0]["occurred_at"] == datetime(2026, 11, 23, 8, 0)
    assert normalise({"eventType": "SomethingNew", "mail": {}}) == []


def test_sunset_after_consecutive_unopened_tracked_emails(tmp_path):
    """8 tracked, unopened weekly e-mails: weekly pauses (monthly still goes); 12: nothing; an open resets."""
    home = make_home(tmp_path, n=3, domain="gmail.com")
    with home.con() as con:
        from delivery.outbox import ensure_outbox
        from valuemail.warehouse import ensure_schema

        ensure_outbox(con)
        ensure_schema(con)
        for i in range(12):
            p = PERIOD.previous(12 - i)
            for cid in ("c0000", "c0001"):
                if cid == "c0000" and i >= 8:
                    continue  # c0000: 8 unopened; c0001: 12 unopened
                con.execute("INSERT INTO outbox (campaign, period, customer_id, email, domain, status, attempts, "
                            "message_id, created_at, updated_at, sent_at) VALUES ('weekly', ?, ?, 'x@gmail.com', "
                            "'gmail.com', 'sent', 1, ?, now(), now(), ?)",
                            [p.start, cid, f"<m{i}{cid}@x>", datetime(2026, 8, 1) .replace(day=1 + i)])
                con.execute("INSERT INTO email_events VALUES (?, NULL, ?, NULL, 'weekly', ?, 'send', NULL, NULL, now(), 't')",
                            [f"k{i}{cid}", cid, p.start])
        # c0002: opened the last one -> count 0
        con.execute("INSERT INTO outbox (campaign, period, customer_id, email, domain, status, attempts, message_id, "
                    "created_at, updated_at, sent_at) VALUES ('weekly', ?, 'c0002', 'x@gmail.com', 'gmail.com', 'sent', 1, "
                    "'<o@x>', now(), now(), now())", [PERIOD.previous().start])
        con.execute("INSERT INTO email_events VALUES ('ko', NULL, 'c0002', NULL, 'weekly', ?, 'open', NULL, NULL, now(), 't')",
                    [PERIOD.previous().start])
        monthly = Period("monthly", PERIOD.start.replace(day=1))
        con.execute("INSERT INTO customer_metrics SELECT 'monthly', ?, customer_id, 5, 1, 0 FROM customer_metrics",
                    [monthly.start])
    decide(home)
    decide(home, period=monthly)
    with home.con() as con:
        got = {(c, cid): (r, d) for c, cid, r, d in con.execute(
            "SELECT campaign, customer_id, reason, detail FROM eligibility").fetchall()}
    assert got[("weekly", "c0000")][0] == "frequency_not_due" and "sunset: 8 consecutive" in got[("weekly", "c0000")][1]
    assert got[("monthly", "c0000")][0] == "send"
    assert got[("weekly", "c0001")][0] == "frequency_not_due" and got[("monthly", "c0001")][0] == "frequency_not_due"
    assert got[("weekly", "c0002")][0] == "send"


def test_s3_prefix_is_ingested(sent_home, monkeypatch, moto_server):
    import boto3

    from delivery.engagement import s3_blobs

    home, refs = sent_home
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server)
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="eu-west-1")
    s3.create_bucket(Bucket="vm-ses-events", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    n = _write_events(home, refs, gz=True)
    s3.put_object(Bucket="vm-ses-events", Key="firehose/2026/11/23/08/events-1.gz",
                  Body=(home.path / "engagement" / "firehose.gz").read_bytes())
    s3.put_object(Bucket="vm-ses-events", Key="firehose-other/ignored.json", Body=b"{}")
    with home.con() as con, home.store() as store:
        summary = ingest_engagement(con, s3_blobs("s3://vm-ses-events/firehose"), store=store)
        assert summary.files == 1 and summary.records == n and sum(summary.inserted.values()) == n
        assert ingest_engagement(con, s3_blobs("s3://vm-ses-events/firehose"), store=store).skipped_files == 1


def test_the_engagement_command(sent_home):
    from click.testing import CliRunner

    from pipelines.cli import main

    home, refs = sent_home
    n = _write_events(home, refs)
    result = CliRunner().invoke(main, ["--home", str(home.path), "engagement"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"{n} records" in result.output and "suppressions: 1 complaint, 1 hard_bounce, 1 unsubscribed" in result.output
    again = CliRunner().invoke(main, ["--home", str(home.path), "engagement", str(home.path / "engagement")])
    assert "1 file(s) read" not in again.output and "already ingested" in again.output
