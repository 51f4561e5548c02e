"""The send loop: ledger first, transport second, in pipelined batches; preferences re-read per chunk.

:func:`deliver` sends every message of a period exactly once:

1. **Reconcile** rows a crash left ``sending`` and rows still ``unknown``
   (:func:`delivery.outbox.reconcile`).
2. **Sync** the ledger with the current eligibility decisions: new ``send`` decisions get a
   ``pending`` row (committed before any transport call), pending rows whose decision
   changed are ``cancelled``.
3. **Batches**: claim up to ``batch_size`` due rows (one commit, ``sending``, respecting the
   per-domain daily cap), then N worker threads — one persistent transport session each —
   take chunks of ``recheck_chunk`` messages.  Before a chunk the worker reads the chunk's
   preferences and suppressions from the preference store, and right before each send it
   re-reads the rest of the chunk if the store changed since (SQLite ``data_version``) or the
   read is older than ``recheck_max_age_s``: a customer who unsubscribed is ``cancelled``,
   not sent — as is one whose mailbox another customer unsubscribed (same normalised
   address, :func:`delivery.prefs.mailbox_siblings`).  Each transport call is bracketed by
   journal records (``B`` … ``A``/``F``/``U``).  One commit records the batch's outcomes.  While the workers send batch *k*, the main
   thread records batch *k − 1* and claims batch *k + 1*.
4. **Retries**: transient refusals go back to ``pending`` with a backoff; the run waits for
   them up to ``max_retry_wait_s``, then leaves them for the next run.  A permanent refusal
   fails that message only.  A :class:`TransportUnavailable` stops the run cleanly (nothing
   in flight is lost; untried messages stay ``pending``).
5. **Report**: sent / deferred / failed / cancelled by reason, written to
   ``delivery_runs`` and returned.

The exact guarantee, and what it costs, is in ``delivery/README.md``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

import duckdb

from delivery import outbox as ledger
from delivery.messages import ContentError, MessageSource, Rendered, build_chunk, init_builder
from delivery.outbox import Claimed, Journal, Outcome, ReconcileReport
from delivery.prefs import blocked, mailbox_siblings
from delivery.transports.base import (
    Envelope,
    OutcomeUnknown,
    PermanentFailure,
    TransientFailure,
    Transport,
    TransportUnavailable,
)
from valuemail.config import Config
from valuemail.periods import Period
from valuemail.warehouse import transaction

RUNS_DDL = """
CREATE TABLE IF NOT EXISTS delivery_runs (
    run_id      VARCHAR PRIMARY KEY,
    campaign    VARCHAR NOT NULL,
    period      DATE    NOT NULL,
    transport   VARCHAR NOT NULL,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    sent        BIGINT NOT NULL,
    failed      BIGINT NOT NULL,
    cancelled   BIGINT NOT NULL,
    unknown     BIGINT NOT NULL,
    deferred    BIGINT NOT NULL,       -- left pending for a later run (domain cap, retry later)
    reconciled  BIGINT NOT NULL,
    stopped     VARCHAR,               -- why the run stopped early (transport unavailable), if it did
    report      JSON NOT NULL          -- the full DeliveryReport
)
"""


@dataclass(frozen=True)
class SendSettings:
    batch_size: int = 1000
    max_attempts: int = 5
    domain_cap: int = 20
    cap_exempt: tuple[str, ...] = ()
    recheck_chunk: int = 100
    recheck_max_age_s: float = 0.5
    journal_fsync: bool = False
    reconcile_grace_s: float = 5.0
    max_retry_wait_s: float = 30.0
    retry_backoff_s: float = 30.0
    build_processes: int = 0
    build_processes_min: int = 2000

    @classmethod
    def from_config(cls, config: Config) -> "SendSettings":
        d = config.section("delivery")
        return cls(
            batch_size=max(1, int(d.get("batch_size", 1000))),
            max_attempts=max(1, int(d.get("max_attempts", 5))),
            domain_cap=int(d.get("domain_daily_cap", 20)),
            cap_exempt=tuple(str(x).lower() for x in d.get("domain_cap_exempt", ())),
            recheck_chunk=max(1, int(d.get("recheck_chunk", 100))),
            recheck_max_age_s=float(d.get("recheck_max_age_s", 0.5)),
            journal_fsync=bool(d.get("journal_fsync", False)),
            reconcile_grace_s=float(d.get("reconcile_grace_s", 5)),
            max_retry_wait_s=float(d.get("max_retry_wait_s", 30)),
            retry_backoff_s=float(d.get("retry_backoff_s", 30)),
            build_processes=max(0, int(d.get("build_processes", 0))),
            build_processes_min=int(d.get("build_processes_min", 2000)),
        )


@dataclass
class DeliveryReport:
    campaign: str
    period: str
    transport: str
    run_id: str
    started_at: str = ""
    finished_at: str = ""
    synced: dict = field(default_factory=dict)
    reconciled: dict = field(default_factory=dict)
    sent: int = 0
    failed: Counter = field(default_factory=Counter)       # reason -> messages
    cancelled: Counter = field(default_factory=Counter)    # reason -> messages
    unknown: Counter = field(default_factory=Counter)      # reason -> messages
    deferred: Counter = field(default_factory=Counter)     # domain_cap | retry_later | not_claimed -> messages
    eligibility_deferred: int = 0                          # decided domain_cap_deferred (next day's run)
    retried: int = 0
    stopped: str | None = None
    seconds: float = 0.0
    ledger: dict = field(default_factory=dict)             # status -> rows for the period, after the run

    @property
    def messages_per_s(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        out = asdict(self)
        for key in ("failed", "cancelled", "unknown", "deferred"):
            out[key] = dict(getattr(self, key))
        out["messages_per_s"] = round(self.messages_per_s, 1)
        return out

    def describe(self) -> str:
        lines = [f"delivery {self.campaign} {self.period} via {self.transport}: {self.sent:,} sent"
                 f" in {self.seconds:.1f}s ({self.messages_per_s:,.0f}/s)"]

        def block(title: str, counter: Counter) -> None:
            total = sum(counter.values())
            lines.append(f"  {title:<10}{total:>8,}")
            for reason, n in counter.most_common():
                lines.append(f"      {n:>10,}  {reason}")

        block("failed", self.failed)
        block("deferred", self.deferred + Counter(
            {"domain_cap_deferred (eligibility; next day's run)": self.eligibility_deferred} if self.eligibility_deferred else {}))
        block("cancelled", self.cancelled)
        block("unknown", self.unknown)
        if self.reconciled:
            lines.append(f"  reconciled from an earlier run: {self.reconciled}")
        if self.stopped:
            lines.append(f"  STOPPED EARLY: {self.stopped}")
        lines.append("  ledger now: " + ", ".join(f"{n:,} {s}" for s, n in sorted(self.ledger.items())))
        return "\n".join(lines)


def _reason(exc: BaseException) -> str:
    """A stable grouping key for the report: the message up to its first ':'."""
    text = str(exc)
    return text.split(":", 1)[0][:80] if ":" in text else text[:80]


def events_lookup_for(con: duckdb.DuckDBPyConnection, period: Period) -> Callable[[Sequence[str]], dict[str, str]]:
    """Reconcile evidence from engagement events: any Send/Delivery/Bounce/… for the row proves acceptance."""

    def lookup(customer_ids: Sequence[str]) -> dict[str, str]:
        try:
            rows = con.execute(
                "SELECT customer_id, any_value(message_id) FROM email_events "
                "WHERE campaign = ? AND period = ? AND list_contains(?, customer_id) "
                "AND event_type IN ('send', 'delivery', 'bounce', 'complaint', 'open', 'click', 'delivery_delay') "
                "GROUP BY customer_id",
                [period.campaign, period.start, list(customer_ids)],
            ).fetchall()
        except duckdb.CatalogException:
            return {}
        return {cid: mid for cid, mid in rows}

    return lookup


def reconcile_ledger(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    period: Period,
    transport: Transport | None = None,
    settings: SendSettings | None = None,
    journal_dir: Path | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ReconcileReport:
    """Resolve the rows an interrupted run left ``sending`` / ``unknown`` against the journal and the transport."""
    from delivery.transports import make_transport

    settings = settings or SendSettings.from_config(config)
    own_transport = transport is None
    transport = transport or make_transport(config)
    try:
        ledger.ensure_outbox(con)
        return ledger.reconcile(
            con, period, transport, journal_dir or (config.home / "journal"), grace_s=settings.reconcile_grace_s,
            max_attempts=settings.max_attempts, events_lookup=events_lookup_for(con, period), sleep=sleep)
    finally:
        if own_transport:
            transport.close()


def reconcile_and_decide(con: duckdb.DuckDBPyConnection, config: Config, period: Period, store=None, now=None,
                         allow_late: bool = False):
    """The eligibility stage: reconcile the ledger first, then decide.

    A crash leaves rows ``sending``; deciding on them would call messages that never left
    ``already_sent`` and the send step would then cancel them.  Reconciled first, a row is
    ``sent`` (found at the transport: ``already_sent``), ``pending`` (never accepted: decided
    and sent again, with the same Message-ID) or ``unknown`` (in doubt: never re-sent).
    """
    from delivery.eligibility import decide_eligibility

    reconciled = reconcile_ledger(con, config, period)
    return reconciled, decide_eligibility(con, config, period, store=store, now=now, allow_late=allow_late)


class _Batch:
    def __init__(self, claimed: list[Claimed], journal: Journal, content: dict[str, Rendered]):
        self.claimed = claimed
        self.journal = journal
        self.content = content
        self.futures: list[Future] = []


def journal_folder(config: Config) -> Path:
    """Where the send loop journals each batch before its transport calls (the ledger's write-ahead log)."""
    return config.home / "journal"


def deliver(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    period: Period,
    transport: Transport,
    source: MessageSource,
    store=None,
    settings: SendSettings | None = None,
    progress: Callable[[str], None] | None = None,
    journal_dir: Path | None = None,
    now: Callable[[], datetime] = ledger.utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Send every due message of ``period`` exactly once; see the module docstring."""
    settings = settings or SendSettings.from_config(config)
    journal_dir = journal_dir or journal_folder(config)
    run_id = f"{period.campaign}-{period.key}-{uuid.uuid4().hex[:12]}"
    report = DeliveryReport(period.campaign, period.key, transport.name, run_id, started_at=now().isoformat())
    t0 = time.monotonic()

    # 1. reconcile what an earlier, interrupted run left behind
    rec = reconcile_ledger(con, config, period, transport, settings, journal_dir, sleep)
    report.reconciled = {k: v for k, v in rec.resolved.items()}
    # 2. the ledger follows the decisions
    report.synced = ledger.sync_with_decisions(con, period, source.sender_domain)
    try:
        report.eligibility_deferred = int(con.execute(
            "SELECT count(*) FROM eligibility WHERE campaign = ? AND period = ? AND reason = 'domain_cap_deferred'",
            [period.campaign, period.start]).fetchone()[0])
    except duckdb.CatalogException:
        pass

    siblings = mailbox_siblings(con) if store is not None else {}  # a mailbox's suppressions apply to all its customers

    stop = threading.Event()
    stop_reason: list[str] = []
    local = threading.local()
    sessions: list = []
    watches: list = []
    sessions_lock = threading.Lock()

    def session():
        s = getattr(local, "session", None)
        if s is None:
            s = local.session = transport.session()
            with sessions_lock:
                sessions.append(s)
        return s

    def check(ids: list[str]) -> dict[str, str]:
        if store is None or not ids:
            return {}
        return blocked(store, ids, period.campaign, siblings)

    def watch() -> "_StoreWatch":
        w = getattr(local, "watch", None)
        if w is None:
            w = local.watch = _StoreWatch(store)
            with sessions_lock:
                watches.append(w)
        return w

    def run_chunk(batch: _Batch, chunk: list[Claimed], built_future: Future | None = None) -> list[Outcome]:
        out: list[Outcome] = []
        journal = batch.journal
        built = None
        if built_future is not None:
            try:
                built = built_future.result()
            except Exception:  # a broken builder process: build here instead
                built = None
        changes = watch()
        changes.changed()  # baseline first, then read: a commit in between is seen again below (harmless)
        checked_at = time.monotonic()
        blocked = check([c.customer_id for c in chunk])
        for i, item in enumerate(chunk):
            cid = item.customer_id
            if stop.is_set():
                out.append(Outcome(cid, "pending", untried=True))
                continue
            try:
                if built is not None:
                    ok, value = built[i]
                    if not ok:
                        raise ContentError(str(value))
                    data = value
                else:
                    data = source.build(batch.content.get(cid), cid, item.email, item.message_id)
            except Exception as exc:  # ContentError, HeaderInjectionError, …: this message only
                error = str(exc) if isinstance(exc, ContentError) and built is not None else f"{type(exc).__name__}: {exc}"
                journal.write("F", cid, "content", error)
                out.append(Outcome(cid, "failed", error_kind="content", error=error))
                continue
            # The send-time re-check, as late as possible: re-read the rest of the chunk when the
            # store changed since the last read (SQLite: PRAGMA data_version, a few µs) or the
            # last read is older than recheck_max_age_s.
            if changes.changed() or time.monotonic() - checked_at > settings.recheck_max_age_s:
                checked_at = time.monotonic()
                blocked = check([c.customer_id for c in chunk[i:]])
            if cid in blocked:
                journal.write("C", cid, blocked[cid])
                out.append(Outcome(cid, "cancelled", error_kind="cancelled", untried=True, error=blocked[cid]))
                continue
            envelope = Envelope(source.envelope_from, item.email, item.message_id,
                                ledger.message_ref(period.campaign, period.key, cid), period.campaign, period.key, cid)
            journal.write("B", cid)
            try:
                tid = session().send(envelope, data)
            except PermanentFailure as exc:
                journal.write("F", cid, "permanent", str(exc))
                out.append(Outcome(cid, "failed", error_kind="permanent", error=str(exc)))
            except TransientFailure as exc:
                journal.write("F", cid, "transient", str(exc))
                if item.attempts >= settings.max_attempts:
                    out.append(Outcome(cid, "failed", error_kind="transient",
                                       error=f"gave up after {item.attempts} attempts: {exc}"))
                else:
                    out.append(Outcome(cid, "pending", error_kind="transient", error=str(exc),
                                       retry_after_s=exc.retry_after_s or settings.retry_backoff_s * 2 ** (item.attempts - 1)))
            except TransportUnavailable as exc:
                journal.write("F", cid, "transient", str(exc))
                out.append(Outcome(cid, "pending", untried=True, error=str(exc)))
                if not stop.is_set():
                    stop_reason.append(str(exc))
                    stop.set()
            except OutcomeUnknown as exc:
                journal.write("U", cid, str(exc))
                out.append(Outcome(cid, "unknown", error_kind="unknown", error=str(exc)))
            except Exception as exc:  # a bug or an unclassified library error mid-call: be conservative
                journal.write("U", cid, f"{type(exc).__name__}: {exc}")
                out.append(Outcome(cid, "unknown", error_kind="unknown", error=f"{type(exc).__name__}: {exc}"))
            else:
                journal.write("A", cid, tid)
                out.append(Outcome(cid, "sent", transport_id=tid))
        return out

    def start_batch() -> _Batch | None:
        if stop.is_set():
            return None
        batch_id = f"{ledger.batch_prefix(period)}{uuid.uuid4().hex[:16]}"
        journal = Journal(journal_dir, batch_id, transport.name, fsync=settings.journal_fsync)  # before the claim
        claimed = ledger.claim(con, period, batch_id, settings.batch_size, settings.domain_cap, settings.cap_exempt,
                               now=now())
        if not claimed:
            journal.close(remove=True)
            return None
        batch = _Batch(claimed, journal, source.load([c.customer_id for c in claimed]))
        size = settings.recheck_chunk
        for start in range(0, len(claimed), size):
            chunk = claimed[start:start + size]
            built = None
            if builders is not None:
                built = builders.submit(build_chunk, [(batch.content.get(c.customer_id), c.customer_id, c.email,
                                                       c.message_id) for c in chunk])
            batch.futures.append(pool.submit(run_chunk, batch, chunk, built))
        return batch

    def end_batch(batch: _Batch) -> None:
        outcomes: list[Outcome] = []
        for fut in batch.futures:
            outcomes.extend(fut.result())
        ledger.finish(con, period, transport.name, outcomes, settings.max_attempts, now=now())
        batch.journal.close(remove=True)  # the ledger is authoritative for this batch now
        for o in outcomes:
            if o.status == "sent":
                report.sent += 1
            elif o.status == "failed":
                report.failed[f"{o.error_kind}: {_reason(o.error or '')}"] += 1
            elif o.status == "cancelled":
                report.cancelled[o.error or "?"] += 1
            elif o.status == "unknown":
                report.unknown[_reason(o.error or "")] += 1
            elif o.status == "pending" and not o.untried:
                report.retried += 1
        if progress:
            progress(f"{report.sent:,} sent, {sum(report.failed.values()):,} failed, "
                     f"{sum(report.cancelled.values()):,} cancelled ({time.monotonic() - t0:.1f}s)")

    pool = ThreadPoolExecutor(max_workers=max(1, int(transport.workers)), thread_name_prefix="vm-send")
    builders = None
    due = ledger.pending_counts(con, period, now=now())[0]
    if settings.build_processes > 0 and source.picklable and due >= settings.build_processes_min:
        # MIME building (file reads, base64) in separate processes: the sending threads keep the GIL
        # for the protocol and the ledger.  Builders only compute bytes; they never send.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        builders = ProcessPoolExecutor(max_workers=settings.build_processes, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=init_builder, initargs=(config, period, source.use_skeleton))
    try:
        current = start_batch()
        waited = 0.0
        while True:
            if current is None:
                pending, wake = ledger.pending_counts(con, period, now=now())
                if pending and wake is not None and not stop.is_set():
                    delay = max(0.0, (wake - now()).total_seconds())
                    if waited + delay <= settings.max_retry_wait_s:
                        sleep(delay + 0.01)
                        waited += delay
                        current = start_batch()
                        continue
                break
            # Claim the next batch while this one is on the wire, then record this one.
            nxt = start_batch()
            end_batch(current)
            current = nxt
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True)
        if builders is not None:
            builders.shutdown(wait=True, cancel_futures=True)
        for s in [*sessions, *watches]:
            try:
                s.close()
            except Exception:
                pass

    if stop_reason:
        report.stopped = stop_reason[0]
    _count_leftovers(con, period, report, settings, now())
    report.seconds = time.monotonic() - t0
    report.finished_at = now().isoformat()
    report.ledger = dict(con.execute(
        "SELECT status, count(*) FROM outbox WHERE campaign = ? AND period = ? GROUP BY status",
        [period.campaign, period.start]).fetchall())
    _record_run(con, report, rec)
    return report


def _count_leftovers(con: duckdb.DuckDBPyConnection, period: Period, report: DeliveryReport,
                     settings: SendSettings, now: datetime) -> None:
    rows = con.execute(
        """
        SELECT CASE WHEN not_before IS NOT NULL THEN 'retry_later (transient refusal)'
                    WHEN $stopped THEN 'not_attempted (run stopped)'
                    ELSE 'domain_cap (daily cap reached; next day''s run)' END, count(*)
        FROM outbox WHERE campaign = $c AND period = $p AND status = 'pending' GROUP BY 1
        """,
        {"c": period.campaign, "p": period.start, "stopped": report.stopped is not None},
    ).fetchall()
    for reason, n in rows:
        report.deferred[reason] += int(n)


def _record_run(con: duckdb.DuckDBPyConnection, report: DeliveryReport, rec: ReconcileReport) -> None:
    with transaction(con):
        con.execute(RUNS_DDL)
        con.execute(
            "INSERT INTO delivery_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [report.run_id, report.campaign, report.period, report.transport, report.started_at, report.finished_at,
             report.sent, sum(report.failed.values()), sum(report.cancelled.values()), sum(report.unknown.values()),
             sum(report.deferred.values()), rec.total, report.stopped, json.dumps(report.as_dict(), default=str)],
        )


class _StoreWatch:
    """Has the preference store changed since the last call?  One per worker thread.

    SQLite: ``PRAGMA data_version`` on a connection of our own changes whenever another
    connection commits — a few microseconds to ask, so it is asked before every send.  Other
    databases: never "changed"; the time bound (``recheck_max_age_s``) applies alone.
    """

    def __init__(self, store):
        self.conn = None
        self.last = None
        engine = getattr(store, "engine", None)
        if engine is not None and engine.dialect.name == "sqlite":
            try:
                self.raw = engine.raw_connection()
                self.conn = self.raw.driver_connection
            except Exception:
                self.conn = None

    def changed(self) -> bool:
        if self.conn is None:
            return False
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        changed = self.last is not None and version != self.last
        self.last = version
        return changed

    def close(self) -> None:
        if self.conn is not None:
            self.raw.close()  # back to the store's pool
            self.conn = None


def deliver_period(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    period: Period,
    transport: Transport | None = None,
    store=None,
    progress: Callable[[str], None] | None = None,
    settings: SendSettings | None = None,
    now: Callable[[], datetime] = ledger.utcnow,
) -> DeliveryReport:
    """:func:`deliver` with everything opened from the configuration (transport, preference store)."""
    from delivery.prefs import open_store
    from delivery.transports import make_transport

    transport = transport or make_transport(config)
    own_store = store is None
    store = store if store is not None else open_store(config)
    try:
        source = MessageSource(con, config, period)
        return deliver(con, config, period, transport, source, store=store, settings=settings, progress=progress, now=now)
    finally:
        if own_store:
            store.close()
        transport.close()


__all__ = ["deliver", "deliver_period", "reconcile_ledger", "reconcile_and_decide", "DeliveryReport", "SendSettings", "ContentError", "events_lookup_for"]
