"""The outbox ledger: exactly-once delivery per (campaign, period, customer).

Table ``outbox`` (DuckDB, public contract), one row per (campaign, period, customer)::

    pending ──claim──► sending ──► sent        the transport accepted the message
       ▲                  │  ├───► failed      the transport refused it (never accepted)
       │                  │  └───► unknown     we cannot tell: never re-sent blindly
       └── not sent ◄─────┘ (transient refusal, or provably never handed over)
    pending ──► cancelled                      re-check at send time said no (unsubscribed …)
    cancelled ──► pending                      a later decision says send again (opt-in)

* The row is written (``pending``, with its final ``Message-ID``) and committed before
  the transport is ever called, and marked ``sending`` (committed, ``attempts`` + 1) per
  batch before the first message of the batch goes out.
* DuckDB commits cost milliseconds, so state changes are batched: one commit claims a batch
  (``sending``), one commit records its outcomes.  In between, every transport call is
  bracketed by records in a per-batch append-only **journal** file
  (``<home>/journal/<batch_id>.log``): ``B`` just before the call, then ``A`` (accepted,
  with the transport's id), ``F`` (refused: permanent / transient / content), ``U``
  (outcome unknown) or ``C`` (cancelled by the re-check).  A journal line is one
  ``write(2)`` on an ``O_APPEND`` file: it survives the process being killed (SIGKILL, OOM)
  because it is in the kernel's page cache; with ``delivery.journal_fsync = true`` it is
  also fsync'd, and survives a power cut.
* :func:`reconcile` runs at the start of every send.  For each row still ``sending`` it
  reads the batch's journal:

  ====================  =======================================================
  journal says          row becomes
  ====================  =======================================================
  ``A``                 ``sent`` (transport id from the journal)
  ``F`` permanent       ``failed``;  ``F`` transient → ``pending``
  ``C``                 ``cancelled``
  nothing at all        ``pending`` — the transport was never called for it
  ``B`` only / ``U``    *in doubt*: the kill landed during the transport call
  ====================  =======================================================

  In-doubt messages (at most one per worker connection at the moment of a kill) are looked
  up by their ``Message-ID`` / reference at the transport's own record — the ``.eml`` file,
  the SMTP server's log (``delivery.smtp.reconcile_log``), SES events in ``email_events``.
  Found → ``sent``.  Not found and the lookup is authoritative → ``pending`` (re-sent with
  the same ``Message-ID``).  Otherwise → ``unknown``: never re-sent automatically; every
  later run looks it up again, and ``valuemail explain`` shows it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import duckdb

from valuemail.periods import Period
from valuemail.warehouse import transaction

STATES = ("pending", "sending", "sent", "failed", "unknown", "cancelled")
#: States in which the message may already be with the recipient: never send again.
MAYBE_SENT = ("sending", "sent", "unknown")

DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    campaign      VARCHAR   NOT NULL,
    period        DATE      NOT NULL,
    customer_id   VARCHAR   NOT NULL,
    email         VARCHAR   NOT NULL,   -- the address at enqueue time
    domain        VARCHAR,              -- recipient domain (per-domain daily cap)
    status        VARCHAR   NOT NULL,   -- pending | sending | sent | failed | unknown | cancelled
    attempts      INTEGER   NOT NULL DEFAULT 0,   -- times the row was claimed for the transport
    transport     VARCHAR,              -- file | smtp | ses
    message_id    VARCHAR,              -- our Message-ID, fixed at enqueue: the reconcile key
    transport_id  VARCHAR,              -- the transport's id (file path, SMTP reply, SES MessageId)
    error_kind    VARCHAR,              -- permanent | transient | content | unknown | cancelled
    last_error    VARCHAR,
    batch_id      VARCHAR,              -- the claim that last marked it 'sending' (journal name)
    not_before    TIMESTAMP,            -- a transient failure is retried after this (UTC)
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    claimed_at    TIMESTAMP,            -- last 'sending' mark (UTC); the domain cap counts these per day
    sent_at       TIMESTAMP,
    PRIMARY KEY (campaign, period, customer_id)
)
"""
_MIGRATE = [
    ("domain", "VARCHAR"), ("error_kind", "VARCHAR"), ("batch_id", "VARCHAR"), ("not_before", "TIMESTAMP"),
    ("claimed_at", "TIMESTAMP"), ("sent_at", "TIMESTAMP"),
]


def ensure_outbox(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'outbox'").fetchall()}
    for name, kind in _MIGRATE:  # ledgers written by the first, thin version
        if name not in have:
            con.execute(f"ALTER TABLE outbox ADD COLUMN {name} {kind}")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def message_ref(campaign: str, period: str, customer_id: str) -> str:
    """The stable reference of one ledger row (hex; also the SES ``vm_ref`` tag)."""
    return hashlib.sha256(f"{campaign}\x1f{period}\x1f{customer_id}".encode()).hexdigest()[:32]


def message_id_for(campaign: str, period: str, customer_id: str, domain: str) -> str:
    """Our ``Message-ID``: the same for every attempt of the same ledger row (no customer data in it)."""
    return f"<vm.{campaign}.{period.replace('-', '')}.{message_ref(campaign, period, customer_id)}@{domain}>"


def ref_of(message_id: str) -> str | None:
    """The reference inside one of our Message-IDs (``None`` for anything else)."""
    inner = message_id.strip().strip("<>")
    local = inner.split("@", 1)[0]
    parts = local.split(".")
    return parts[3] if len(parts) == 4 and parts[0] == "vm" and len(parts[3]) == 32 else None


# -- the journal ----------------------------------------------------------------------------
class Journal:
    """Append-only per-batch record of transport calls (see the module docstring)."""

    def __init__(self, folder: Path, batch_id: str, transport: str, fsync: bool = False):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{batch_id}.log"
        self.fsync = fsync
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._lock = threading.Lock()
        self.write("H", transport)

    def write(self, *fields: str) -> None:
        line = ("[" + ",".join([_json_str(str(f)) for f in fields]) + "]\n").encode("ascii")
        with self._lock:
            os.write(self._fd, line)
            if self.fsync:
                os.fsync(self._fd)

    def close(self, remove: bool) -> None:
        os.close(self._fd)
        if remove:
            self.path.unlink(missing_ok=True)


from json.encoder import encode_basestring_ascii as _json_str  # noqa: E402  (C: a JSON string literal)


def read_journal(path: Path) -> tuple[str | None, dict[str, tuple[str, ...]]]:
    """``(transport name, {customer_id: last record})``; records are ``("B",)``, ``("A", tid)``,
    ``("F", kind, error)``, ``("U", error)`` or ``("C", reason)``."""
    last: dict[str, tuple[str, ...]] = {}
    transport = None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, last
    for raw in data.splitlines():
        try:
            fields = json.loads(raw)
        except ValueError:  # a torn last line (power cut mid-write): ignore it
            continue
        if not isinstance(fields, list) or len(fields) < 2:
            continue
        kind, value, *rest = fields
        if kind == "H":
            transport = value
        else:
            last[value] = (kind, *rest)
    return transport, last


# -- outcomes of one batch --------------------------------------------------------------------
@dataclass
class Outcome:
    customer_id: str
    status: str                 # sent | failed | unknown | pending | cancelled
    transport_id: str | None = None
    error_kind: str | None = None
    error: str | None = None
    retry_after_s: float = 0.0
    untried: bool = False       # the transport was never called for it (its claim does not count)


@dataclass
class Claimed:
    customer_id: str
    email: str
    message_id: str
    attempts: int


def sync_with_decisions(con: duckdb.DuckDBPyConnection, period: Period, sender_domain: str) -> dict[str, int]:
    """Make the ledger follow the current eligibility decisions (one transaction).

    * ``send`` without a row → a ``pending`` row with its final Message-ID;
    * ``cancelled`` row whose decision is ``send`` again → ``pending`` (the customer opted in again);
    * ``pending`` row whose decision is no longer ``send`` → ``cancelled`` with the reason.
    Rows that may have been sent (``sending``, ``sent``, ``unknown``) are never touched.
    """
    p = {"c": period.campaign, "p": period.start, "now": utcnow(), "dom": sender_domain, "pk": period.key}
    with transaction(con):
        ensure_outbox(con)
        inserted = con.execute(
            """
            INSERT INTO outbox (campaign, period, customer_id, email, domain, status, attempts, message_id,
                                created_at, updated_at)
            SELECT e.campaign, e.period, e.customer_id, e.email, e.domain, 'pending', 0,
                   '<vm.' || $c || '.' || replace($pk, '-', '') || '.'
                     || substr(sha256($c || chr(31) || $pk || chr(31) || e.customer_id), 1, 32) || '@' || $dom || '>',
                   $now, $now
            FROM eligibility e
            WHERE e.campaign = $c AND e.period = $p AND e.reason = 'send'
              AND NOT EXISTS (SELECT 1 FROM outbox o
                              WHERE o.campaign = e.campaign AND o.period = e.period AND o.customer_id = e.customer_id)
            """,
            p,
        ).fetchone()[0]
        revived = con.execute(
            """
            UPDATE outbox SET status = 'pending', error_kind = NULL, last_error = NULL, updated_at = $now,
                   email = e.email, domain = e.domain
            FROM eligibility e
            WHERE outbox.campaign = $c AND outbox.period = $p AND outbox.status = 'cancelled'
              AND e.campaign = outbox.campaign AND e.period = outbox.period AND e.customer_id = outbox.customer_id
              AND e.reason = 'send'
            """,
            {k: v for k, v in p.items() if k in ("c", "p", "now")},
        ).fetchone()[0]
        cancelled = con.execute(
            """
            UPDATE outbox SET status = 'cancelled', error_kind = 'cancelled', updated_at = $now,
                   last_error = 'decision is now ' || coalesce(e.reason, 'missing')
            FROM (SELECT o.customer_id, e.reason FROM outbox o
                  LEFT JOIN eligibility e ON e.campaign = o.campaign AND e.period = o.period AND e.customer_id = o.customer_id
                  WHERE o.campaign = $c AND o.period = $p AND o.status = 'pending'
                    AND (e.reason IS NULL OR e.reason <> 'send')) e
            WHERE outbox.campaign = $c AND outbox.period = $p AND outbox.customer_id = e.customer_id
            """,
            {k: v for k, v in p.items() if k in ("c", "p", "now")},
        ).fetchone()[0]
    return {"enqueued": int(inserted), "revived": int(revived), "cancelled": int(cancelled)}


def cancel_pending(con: duckdb.DuckDBPyConnection, period: Period, reason: str) -> int:
    """Cancel every ``pending`` row of ``period`` (e.g. its send window has closed); returns how many.

    A later ``send`` decision revives them (:func:`sync_with_decisions`).
    """
    with transaction(con):
        ensure_outbox(con)
        return int(con.execute(
            "UPDATE outbox SET status = 'cancelled', error_kind = 'cancelled', last_error = ?, updated_at = ? "
            "WHERE campaign = ? AND period = ? AND status = 'pending'",
            [reason, utcnow(), period.campaign, period.start]).fetchone()[0])


def claim(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    batch_id: str,
    limit: int,
    domain_cap: int,
    cap_exempt: Sequence[str],
    now: datetime | None = None,
) -> list[Claimed]:
    """Mark up to ``limit`` due ``pending`` rows ``sending`` (one commit) and return them.

    The per-recipient-domain daily cap is enforced here, across every campaign and period:
    a domain gets at most ``domain_cap`` claims per UTC day (messages that may have gone:
    ``sending``, ``sent``, ``unknown``); the rest stay ``pending`` for the next day's run.
    """
    import pyarrow as pa

    now = now or utcnow()
    day_start = datetime(now.year, now.month, now.day)
    exempt = set(cap_exempt)
    p = {"c": period.campaign, "p": period.start}
    with transaction(con):
        used: dict[str, int] = {}
        if domain_cap > 0:
            used = dict(con.execute(
                "SELECT domain, count(*) FROM outbox WHERE claimed_at >= ? AND status IN ('sending', 'sent', 'unknown') "
                "GROUP BY domain", [day_start]).fetchall())
        capped = [d for d, n in used.items() if n >= domain_cap and d not in exempt]
        candidates = con.execute(
            """
            SELECT customer_id, domain FROM outbox
            WHERE campaign = $c AND period = $p AND status = 'pending' AND (not_before IS NULL OR not_before <= $now)
              AND coalesce(domain, '') NOT IN (SELECT unnest($capped::VARCHAR[]))
            ORDER BY customer_id LIMIT $n
            """,
            {**p, "now": now, "capped": capped, "n": int(limit) * 2 + 100},
        ).fetchall()
        picked: list[str] = []
        for customer_id, domain in candidates:
            if domain_cap > 0 and domain not in exempt:
                if used.get(domain, 0) >= domain_cap:
                    continue
                used[domain] = used.get(domain, 0) + 1
            picked.append(customer_id)
            if len(picked) >= limit:
                break
        if not picked:
            return []
        con.register("_claim", pa.table({"customer_id": pa.array(picked, pa.string())}))
        try:
            rows = con.execute(
                """
                UPDATE outbox SET status = 'sending', attempts = attempts + 1, batch_id = $b,
                       claimed_at = $now, updated_at = $now, not_before = NULL
                FROM _claim
                WHERE outbox.campaign = $c AND outbox.period = $p AND outbox.customer_id = _claim.customer_id
                  AND outbox.status = 'pending'
                RETURNING outbox.customer_id, outbox.email, outbox.message_id, outbox.attempts
                """,
                {**p, "b": batch_id, "now": now},
            ).fetchall()
        finally:
            con.unregister("_claim")
    rows.sort()
    return [Claimed(*r) for r in rows]


def pending_counts(con: duckdb.DuckDBPyConnection, period: Period, now: datetime | None = None) -> tuple[int, datetime | None]:
    """``(pending rows, earliest not_before still in the future)``."""
    now = now or utcnow()
    n, wait_until = con.execute(
        "SELECT count(*), min(not_before) FILTER (WHERE not_before > $now) FROM outbox "
        "WHERE campaign = $c AND period = $p AND status = 'pending'",
        {"c": period.campaign, "p": period.start, "now": now},
    ).fetchone()
    return int(n), wait_until


def finish(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    transport_name: str,
    outcomes: Iterable[Outcome],
    max_attempts: int,
    now: datetime | None = None,
) -> None:
    """Record the outcomes of a batch in one commit (``pending`` outcomes past ``max_attempts`` → ``failed``)."""
    with transaction(con):
        _apply(con, period, transport_name, outcomes, max_attempts, now)


def _apply(con, period, transport_name, outcomes, max_attempts, now=None) -> None:
    import pyarrow as pa

    now = now or utcnow()
    outcomes = list(outcomes)
    if not outcomes:
        return
    table = pa.table({
        "customer_id": [o.customer_id for o in outcomes],
        "status": [o.status for o in outcomes],
        "transport_id": [o.transport_id for o in outcomes],
        "error_kind": [o.error_kind for o in outcomes],
        "error": [None if o.error is None else o.error[:500] for o in outcomes],
        "retry_after_s": [float(o.retry_after_s) for o in outcomes],
        "untried": [bool(o.untried) for o in outcomes],
    })
    con.register("_outcomes", table)
    try:
        con.execute(
            """
            UPDATE outbox SET
                attempts = outbox.attempts - CASE WHEN r.untried THEN 1 ELSE 0 END,
                status = CASE WHEN r.status = 'pending' AND NOT r.untried AND outbox.attempts >= $max
                              THEN 'failed' ELSE r.status END,
                transport = $t,
                transport_id = coalesce(r.transport_id, outbox.transport_id),
                error_kind = r.error_kind,
                last_error = CASE WHEN r.status = 'pending' AND NOT r.untried AND outbox.attempts >= $max
                                  THEN 'gave up after ' || outbox.attempts || ' attempts: ' || coalesce(r.error, '')
                                  ELSE r.error END,
                not_before = CASE WHEN r.status = 'pending' AND r.retry_after_s > 0
                                  THEN $now + to_microseconds(CAST(r.retry_after_s * 1e6 AS BIGINT)) END,
                sent_at = CASE WHEN r.status = 'sent' THEN $now ELSE outbox.sent_at END,
                updated_at = $now
            FROM _outcomes r
            WHERE outbox.campaign = $c AND outbox.period = $p AND outbox.customer_id = r.customer_id
              AND outbox.status = 'sending'
            """,
            {"c": period.campaign, "p": period.start, "t": transport_name, "max": int(max_attempts), "now": now},
        )
    finally:
        con.unregister("_outcomes")


# -- reconcile ----------------------------------------------------------------------------------
@dataclass
class ReconcileReport:
    resolved: dict[str, int] = field(default_factory=dict)   # new status -> rows
    in_doubt: int = 0                                        # rows that needed a transport lookup
    found: int = 0                                           # ... found at the transport

    @property
    def total(self) -> int:
        return sum(self.resolved.values())


def reconcile(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    transport,
    journal_dir: Path,
    grace_s: float = 0.0,
    max_attempts: int = 3,
    events_lookup=None,
    sleep=time.sleep,
) -> ReconcileReport:
    """Resolve rows left ``sending`` by a crash, and look ``unknown`` rows up again (see module docstring).

    ``transport.lookup(items) -> {message_id: transport_id}`` asks the transport's own
    record; ``transport.lookup_is_authoritative`` says whether "not found" proves "never
    accepted".  ``events_lookup(customer_ids) -> {customer_id: transport_id}`` finds messages
    the engagement events (SES Send / Delivery / …) prove were accepted.
    """
    report = ReconcileReport()
    rows = con.execute(
        "SELECT customer_id, status, batch_id, message_id, transport FROM outbox "
        "WHERE campaign = ? AND period = ? AND status IN ('sending', 'unknown') ORDER BY customer_id",
        [period.campaign, period.start],
    ).fetchall()
    if not rows:
        _remove_stale_journals(con, journal_dir, period)
        return report
    name = getattr(transport, "name", "?")
    journals: dict[str | None, tuple[str | None, dict[str, tuple[str, ...]]] | None] = {}
    outcomes: list[Outcome] = []
    doubt: list[tuple[str, str, str, bool]] = []   # (customer_id, message_id, why, same transport)
    newest_write = 0.0
    for cid, status, batch_id, message_id, used in rows:
        if status == "unknown":
            doubt.append((cid, message_id, "outcome was unknown", used in (None, name)))
            continue
        if batch_id not in journals:
            path = journal_dir / f"{batch_id}.log"
            if batch_id and path.exists():
                journals[batch_id] = read_journal(path)
                newest_write = max(newest_write, path.stat().st_mtime)
            else:
                journals[batch_id] = None  # no journal: nothing tells which calls were made
        journal = journals[batch_id]
        if journal is None:
            doubt.append((cid, message_id, "its batch journal is missing", used in (None, name)))
            continue
        journal_transport, records = journal
        record = records.get(cid)
        if record is None:
            outcomes.append(Outcome(cid, "pending", untried=True,
                                    error="interrupted before its transport call; will be sent"))
        elif record[0] == "A":
            outcomes.append(Outcome(cid, "sent", transport_id=record[1] if len(record) > 1 else None,
                                    error="reconciled from the journal"))
        elif record[0] == "F":
            kind = record[1] if len(record) > 1 else "permanent"
            outcomes.append(Outcome(cid, "pending" if kind == "transient" else "failed", error_kind=kind,
                                    error=record[2] if len(record) > 2 else None))
        elif record[0] == "C":
            outcomes.append(Outcome(cid, "cancelled", error_kind="cancelled", untried=True,
                                    error=f"re-check at send time: {record[1] if len(record) > 1 else ''}"))
        else:  # "B" or "U": the process died (or the connection broke) during the call
            doubt.append((cid, message_id, "interrupted during its transport call",
                          journal_transport in (None, name)))
    if doubt:
        # Give the transport time to finish what it may have been doing when we died.
        wait = grace_s - (time.time() - newest_write) if newest_write else 0.0
        if wait > 0:
            sleep(wait)
        from delivery.transports.base import LookupItem

        found = dict(transport.lookup([LookupItem(mid, period.campaign, period.key, cid)
                                       for cid, mid, _, same in doubt if same]))
        if events_lookup is not None:
            by_cid = {cid: mid for cid, mid, _, _ in doubt}
            for cid, tid in events_lookup(list(by_cid)).items():
                found.setdefault(by_cid[cid], tid)
        report.in_doubt = len(doubt)
        authoritative = bool(getattr(transport, "lookup_is_authoritative", False))
        for cid, mid, why, same in doubt:
            if mid in found:
                report.found += 1
                tid = found[mid]
                outcomes.append(Outcome(cid, "sent", transport_id=None if tid in (None, True) else str(tid),
                                        error=f"reconciled: {why}; found at the transport"))
            elif authoritative and same:
                outcomes.append(Outcome(cid, "pending", error_kind="transient",
                                        error=f"reconciled: {why}; not at the transport, so it is sent again"))
            else:
                outcomes.append(Outcome(cid, "unknown", error_kind="unknown",
                                        error=f"{why}; the transport cannot confirm it, so it is not re-sent"))
    # One commit: rows are 'sending' or 'unknown'; _apply only touches 'sending'.
    with transaction(con):
        con.execute(
            "UPDATE outbox SET status = 'sending' WHERE campaign = ? AND period = ? AND status = 'unknown'",
            [period.campaign, period.start],
        )
        _apply(con, period, name, outcomes, max_attempts=max_attempts + 1)
    for o in outcomes:
        report.resolved[o.status] = report.resolved.get(o.status, 0) + 1
    _remove_stale_journals(con, journal_dir, period)
    return report


def batch_prefix(period: Period) -> str:
    return f"{period.campaign}-{period.key}-"


def _remove_stale_journals(con: duckdb.DuckDBPyConnection, journal_dir: Path, period: Period) -> None:
    """Delete this period's journals with no row left in ``sending`` (the ledger is authoritative again)."""
    if not journal_dir.exists():
        return
    live = {r[0] for r in con.execute("SELECT DISTINCT batch_id FROM outbox WHERE status = 'sending'").fetchall()}
    for path in journal_dir.glob(f"{batch_prefix(period)}*.log"):
        if path.stem not in live:
            path.unlink(missing_ok=True)


def iter_rows(con: duckdb.DuckDBPyConnection, sql: str, params: list, size: int = 10_000) -> Iterator[tuple]:
    cur = con.execute(sql, params)
    while True:
        chunk = cur.fetchmany(size)
        if not chunk:
            return
        yield from chunk
