"""Engagement ingest: SES event-publishing records → ``email_events``, suppressions, tier and sunset input.

Input: the JSON records Amazon SES event publishing writes through a configuration set —
``Send``, ``Delivery``, ``Bounce``, ``Complaint``, ``Open``, ``Click``, ``Subscription``,
``Reject``, ``DeliveryDelay``, ``Rendering Failure`` — in any of the shapes they arrive in:

* Firehose → S3 objects: records concatenated (with or without newlines), optionally gzip;
* SNS → HTTP/SQS/e-mail-json: a notification envelope whose ``Message`` is the record as a
  JSON string (SQS adds one more envelope, ``Body``);
* a JSON array or NDJSON file of records; identity feedback notifications
  (``notificationType`` instead of ``eventType``) are accepted too.

From a folder (``delivery.engagement_dir``, default ``<home>/engagement``) or an S3 prefix
(``delivery.engagement_s3``).  Files / objects already ingested (same size + mtime / ETag)
are skipped; each event has a stable ``event_key``, so re-ingesting anything adds nothing.

Each record is joined to the ledger: the ``vm_ref`` message tag (or the ``X-Valuemail-Ref``
header) names the outbox row; SES's own ``messageId`` matches ``outbox.transport_id``; as a
last resort the recipient address matches ``customers.email``.

Effects, for newly ingested events only (re-ingesting an old bounce never undoes an opt-in):

* ``Bounce`` with ``bounceType = Permanent`` → suppression ``hard_bounce`` (source ``bounce``);
* ``Complaint`` → suppression ``complaint`` (source ``complaint``);
* ``Subscription`` with ``newTopicPreferences.unsubscribeAll`` → ``unsubscribed`` (source
  ``one_click``: SES-managed List-Unsubscribe);
* ``Open`` / ``Click`` rows feed the engagement tier (metrics) and the sunset rule
  (:mod:`delivery.eligibility` counts consecutive unopened tracked messages).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import duckdb

from valuemail.warehouse import transaction

FILES_DDL = """
CREATE TABLE IF NOT EXISTS email_event_files (
    source      VARCHAR PRIMARY KEY,   -- file path or s3:// URI
    fingerprint VARCHAR NOT NULL,      -- size + mtime, or the S3 ETag
    records     BIGINT  NOT NULL,
    ingested_at TIMESTAMP NOT NULL
)
"""
EVENT_TYPES = {
    "send": "send", "delivery": "delivery", "bounce": "bounce", "complaint": "complaint", "open": "open",
    "click": "click", "subscription": "subscription", "reject": "reject", "deliverydelay": "delivery_delay",
    "rendering failure": "rendering_failure", "renderingfailure": "rendering_failure",
}
_COLUMNS = ("event_key", "message_id", "ref", "campaign", "period", "email", "event_type", "bounce_type",
            "detail", "occurred_at", "source_file")


@dataclass
class EngagementSummary:
    files: int = 0
    skipped_files: int = 0
    records: int = 0
    bad_records: int = 0
    inserted: dict[str, int] = field(default_factory=dict)   # event_type -> new rows
    duplicates: int = 0
    unmatched: int = 0                                       # new rows with no customer found
    suppressions: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        new = sum(self.inserted.values())
        parts = ", ".join(f"{n} {t}" for t, n in sorted(self.inserted.items())) or "none"
        sup = ", ".join(f"{n} {r}" for r, n in sorted(self.suppressions.items())) or "none"
        return (f"engagement: {self.files} file(s) read ({self.skipped_files} already ingested), {self.records} records"
                f" ({self.bad_records} unreadable); {new} new events ({parts}); {self.duplicates} duplicates;"
                f" {self.unmatched} not matched to a customer; suppressions: {sup}")


# -- parsing ------------------------------------------------------------------------------------
def iter_json_values(data: bytes) -> Iterator[Any]:
    """Every JSON value in ``data``: one document, NDJSON, or values concatenated without separators."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    text = data.decode("utf-8-sig")
    decoder = json.JSONDecoder()
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n:
            break
        value, i = decoder.raw_decode(text, i)
        yield value


def iter_records(value: Any) -> Iterator[dict]:
    """Unwrap arrays and SNS / SQS envelopes down to SES event records."""
    if isinstance(value, list):
        for item in value:
            yield from iter_records(item)
    elif isinstance(value, dict):
        if "eventType" in value or "notificationType" in value:
            yield value
        elif isinstance(value.get("Message"), str):     # SNS notification
            yield from iter_records(json.loads(value["Message"]))
        elif isinstance(value.get("Body"), str):        # SQS message carrying SNS
            yield from iter_records(json.loads(value["Body"]))
        elif isinstance(value.get("Records"), list):    # an S3/SNS batch
            for item in value["Records"]:
                yield from iter_records(item.get("Sns", item))


def _ts(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _first(values: Any) -> str | None:
    if isinstance(values, list):
        return str(values[0]) if values else None
    return None if values is None else str(values)


def normalise(record: dict, source: str = "") -> list[dict]:
    """One SES record → ``email_events``-shaped rows (one per affected recipient)."""
    kind = str(record.get("eventType") or record.get("notificationType") or "")
    event_type = EVENT_TYPES.get(kind.lower().replace("_", ""), EVENT_TYPES.get(kind.lower()))
    if event_type is None:
        return []
    mail = record.get("mail") or {}
    tags = mail.get("tags") or {}
    headers = {str(h.get("name", "")).lower(): str(h.get("value", "")) for h in mail.get("headers") or [] if isinstance(h, dict)}
    ref = _first(tags.get("vm_ref")) or headers.get("x-valuemail-ref")
    campaign = _first(tags.get("campaign"))
    period = _first(tags.get("period"))
    ses_id = mail.get("messageId")
    destination = mail.get("destination") or []
    body = record.get(kind[:1].lower() + kind[1:].replace(" ", "")) or record.get(event_type) or {}
    base = {"message_id": ses_id, "ref": ref, "campaign": campaign, "period": period, "event_type": event_type,
            "bounce_type": None, "source_file": source}
    rows: list[dict] = []
    if event_type == "bounce":
        for r in body.get("bouncedRecipients") or [{}]:
            rows.append({**base, "email": r.get("emailAddress") or _first(destination), "bounce_type": body.get("bounceType"),
                         "detail": " ".join(x for x in (body.get("bounceSubType"), r.get("status"), r.get("diagnosticCode")) if x),
                         "occurred_at": _ts(body.get("timestamp")) or _ts(mail.get("timestamp"))})
    elif event_type == "complaint":
        for r in body.get("complainedRecipients") or [{}]:
            rows.append({**base, "email": r.get("emailAddress") or _first(destination),
                         "detail": body.get("complaintFeedbackType") or body.get("complaintSubType"),
                         "occurred_at": _ts(body.get("timestamp")) or _ts(mail.get("timestamp"))})
    else:
        detail = {
            "click": body.get("link"),
            "open": body.get("userAgent"),
            "delivery": body.get("smtpResponse"),
            "reject": body.get("reason"),
            "delivery_delay": body.get("delayType"),
            "rendering_failure": body.get("errorMessage"),
        }.get(event_type)
        if event_type == "subscription":
            new = body.get("newTopicPreferences") or {}
            detail = json.dumps({"source": body.get("source"), "unsubscribeAll": bool(new.get("unsubscribeAll")),
                                 "contactList": body.get("contactList")}, separators=(",", ":"))
        rows.append({**base, "email": _first(destination), "detail": detail,
                     "occurred_at": _ts(body.get("timestamp")) or _ts(mail.get("timestamp"))})
    for row in rows:
        if row["occurred_at"] is None:
            row["occurred_at"] = datetime.now(timezone.utc).replace(tzinfo=None)
        row["email"] = (row["email"] or "").strip().lower() or None
        key = "\x1f".join(str(x) for x in (ses_id or ref, event_type, row["occurred_at"].isoformat(), row["email"],
                                            row["detail"] if event_type == "click" else ""))
        row["event_key"] = hashlib.sha256(key.encode()).hexdigest()
    return rows


# -- sources ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Blob:
    source: str
    fingerprint: str
    read: Callable[[], bytes]


def local_blobs(folder: Path) -> Iterator[Blob]:
    if not folder.exists():
        return
    paths = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    for path in paths:
        st = path.stat()
        yield Blob(str(path.resolve()), f"{st.st_size}:{st.st_mtime_ns}", path.read_bytes)


def s3_blobs(uri: str, client=None) -> Iterator[Blob]:
    from valuemail import s3

    client = client or s3.make_client()
    for obj in s3.list_objects(uri, client=client):
        yield Blob(obj.uri, obj.etag or str(obj.size),
                   lambda obj=obj: client.get_object(Bucket=obj.bucket, Key=obj.key)["Body"].read())


# -- ingest --------------------------------------------------------------------------------------
def ingest_engagement(
    con: duckdb.DuckDBPyConnection,
    blobs: Iterable[Blob],
    store=None,
    force: bool = False,
) -> EngagementSummary:
    """Read every new blob, insert new events into ``email_events``, apply suppressions to ``store``."""
    import pyarrow as pa

    from valuemail.warehouse import ensure_schema

    ensure_schema(con)
    con.execute(FILES_DDL)
    summary = EngagementSummary()
    seen = dict(con.execute("SELECT source, fingerprint FROM email_event_files").fetchall())
    rows: list[dict] = []
    done: list[tuple[str, str, int]] = []
    for blob in blobs:
        if not force and seen.get(blob.source) == blob.fingerprint:
            summary.skipped_files += 1
            continue
        summary.files += 1
        count = 0
        try:
            values = list(iter_json_values(blob.read()))
        except (ValueError, OSError) as exc:
            summary.bad_records += 1
            values = []
            _ = exc
        for value in values:
            for record in iter_records(value):
                count += 1
                try:
                    rows.extend(normalise(record, blob.source))
                except (TypeError, AttributeError, ValueError):
                    summary.bad_records += 1
        summary.records += count
        done.append((blob.source, blob.fingerprint, count))
    table = pa.table({c: [r.get(c) for r in rows] for c in _COLUMNS}, schema=pa.schema([
        ("event_key", pa.string()), ("message_id", pa.string()), ("ref", pa.string()), ("campaign", pa.string()),
        ("period", pa.string()), ("email", pa.string()), ("event_type", pa.string()), ("bounce_type", pa.string()),
        ("detail", pa.string()), ("occurred_at", pa.timestamp("us")), ("source_file", pa.string())]))
    con.register("_ev_in", table)
    try:
        with transaction(con):
            con.execute("""
                CREATE OR REPLACE TEMP TABLE _ev AS
                WITH dedup AS (SELECT * FROM _ev_in QUALIFY row_number() OVER (PARTITION BY event_key) = 1),
                outbox_refs AS (
                    SELECT campaign, period, customer_id, transport_id,
                           split_part(split_part(message_id, '@', 1), '.', 4) AS ref
                    FROM outbox
                )
                SELECT d.event_key, d.message_id,
                       coalesce(o1.customer_id, o2.customer_id, c.customer_id) AS customer_id,
                       d.email,
                       coalesce(o1.campaign, o2.campaign, d.campaign) AS campaign,
                       coalesce(o1.period, o2.period, TRY_CAST(d.period AS DATE)) AS period,
                       d.event_type, d.bounce_type, d.detail, d.occurred_at, d.source_file
                FROM dedup d
                LEFT JOIN outbox_refs o1 ON d.ref IS NOT NULL AND o1.ref = d.ref
                LEFT JOIN outbox_refs o2 ON o1.customer_id IS NULL AND d.message_id IS NOT NULL AND o2.transport_id = d.message_id
                LEFT JOIN (SELECT lower(trim(email)) AS email, any_value(customer_id) AS customer_id FROM customers GROUP BY 1) c
                       ON o1.customer_id IS NULL AND o2.customer_id IS NULL AND c.email = d.email
                WHERE NOT EXISTS (SELECT 1 FROM email_events e WHERE e.event_key = d.event_key)
            """) if _has_outbox(con) else con.execute("""
                CREATE OR REPLACE TEMP TABLE _ev AS
                WITH dedup AS (SELECT * FROM _ev_in QUALIFY row_number() OVER (PARTITION BY event_key) = 1)
                SELECT d.event_key, d.message_id, c.customer_id, d.email, d.campaign, TRY_CAST(d.period AS DATE) AS period,
                       d.event_type, d.bounce_type, d.detail, d.occurred_at, d.source_file
                FROM dedup d
                LEFT JOIN (SELECT lower(trim(email)) AS email, any_value(customer_id) AS customer_id FROM customers GROUP BY 1) c
                       ON c.email = d.email
                WHERE NOT EXISTS (SELECT 1 FROM email_events e WHERE e.event_key = d.event_key)
            """)
            con.execute("INSERT INTO email_events SELECT * FROM _ev")
            for source, fingerprint, count in done:
                con.execute("INSERT OR REPLACE INTO email_event_files VALUES (?, ?, ?, now())", [source, fingerprint, count])
        new = con.execute("SELECT event_type, count(*), count(*) FILTER (WHERE customer_id IS NULL) FROM _ev GROUP BY 1").fetchall()
        summary.inserted = {t: int(n) for t, n, _ in new}
        summary.unmatched = sum(int(u) for _, _, u in new)
        summary.duplicates = len(rows) - sum(summary.inserted.values())
        effects = con.execute("""
            SELECT customer_id, event_type, bounce_type, detail FROM _ev
            WHERE customer_id IS NOT NULL AND (
                  (event_type = 'bounce' AND bounce_type = 'Permanent') OR event_type = 'complaint'
               OR (event_type = 'subscription' AND json_extract(detail, '$.unsubscribeAll')::BOOLEAN))
            ORDER BY occurred_at
        """).fetchall()
        con.execute("DROP TABLE IF EXISTS _ev")
    finally:
        con.unregister("_ev_in")
    if store is not None:
        for customer_id, event_type, _bounce_type, detail in effects:
            if event_type == "bounce":
                reason, changed = "hard_bounce", store.suppress(customer_id, "hard_bounce", "bounce", detail=(detail or "")[:200])
            elif event_type == "complaint":
                reason, changed = "complaint", store.suppress(customer_id, "complaint", "complaint", detail=detail)
            else:
                reason, changed = "unsubscribed", store.unsubscribe(customer_id, "one_click", detail="SES subscription management")
            if changed:
                summary.suppressions[reason] = summary.suppressions.get(reason, 0) + 1
    return summary


def _has_outbox(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'outbox'").fetchone()[0])


def sources_from_config(config, paths: Iterable[str] = ()) -> list[Iterable[Blob]]:
    """The configured engagement sources (or ``paths``: folders, files, s3:// prefixes)."""
    from valuemail import s3

    delivery = config.section("delivery")
    wanted = list(paths)
    if not wanted:
        folder = Path(str(delivery.get("engagement_dir", "engagement")))
        wanted.append(str(folder if folder.is_absolute() else config.home / folder))
        if delivery.get("engagement_s3"):
            wanted.append(str(delivery["engagement_s3"]))
    return [s3_blobs(p) if s3.is_s3_uri(p) else local_blobs(Path(p)) for p in wanted]
