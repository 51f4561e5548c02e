"""The preference store: how often each customer wants value emails, who must not get any, and why.

The preference centre keeps its own database so that it never competes with the pipeline
for DuckDB's single-writer lock: SQLite (WAL mode) under the home folder by default, or any
SQLAlchemy URL (e.g. PostgreSQL) set as ``preference_centre.database_url``.

Three tables (SQLAlchemy Core, created on first use):

``pc_customers``
    one row per customer the store has heard of: ``locale`` (registered by the pipeline
    with :meth:`PreferenceStore.upsert_customers`) and ``frequency`` (``NULL`` = never
    chosen, which means the default, ``weekly``).
``pc_suppressions``
    why a customer must not be emailed: ``unsubscribed`` | ``hard_bounce`` | ``complaint``
    | ``manual``, with an ``active`` flag, ``since`` and ``lifted_at``.  Lifting keeps
    the row (history); at most one *active* row per (customer, reason).
``pc_changes``
    the append-only change log: every change with its time (UTC) and its source
    (``page`` | ``one_click`` | ``complaint`` | ``bounce`` | ``import`` | ``sunset`` |
    ``operator``).  On SQLite, triggers reject UPDATE and DELETE on it.

The rules (see ``preference_centre/README.md``):

* **Frequency = the most frequent campaign a customer wants.**  ``weekly`` gets weekly,
  monthly and yearly emails; ``monthly`` gets monthly and yearly; ``yearly`` gets the
  yearly recap only; ``never`` gets nothing.  A customer the store has never heard of
  gets the default, ``weekly``.
* **Suppressions win over frequency.**  ``complaint``, ``hard_bounce``, ``manual`` and
  ``unsubscribed`` all block every campaign.  An opt-in from the preferences page
  (:meth:`PreferenceStore.resubscribe`) lifts ``unsubscribed``, ``complaint`` and
  ``hard_bounce`` — an explicit opt-in is fresh consent and, for a bounce, the customer
  telling us the mailbox works again; a ``manual`` suppression is an operator's decision
  and is lifted only with :meth:`PreferenceStore.lift_suppression`.

Concurrency: every write is one short transaction that first locks the customer's row
(SQLite: ``BEGIN IMMEDIATE`` with a busy timeout; PostgreSQL: ``SELECT … FOR UPDATE``),
so concurrent writers — web requests, the pipeline, several processes — serialise per
customer and lose no update.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, Literal, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from valuemail.config import Config
from valuemail.ids import MAX_ID_LENGTH, id_problem

Frequency = Literal["weekly", "monthly", "yearly", "never"]
Campaign = Literal["weekly", "monthly", "yearly"]
SuppressionReason = Literal["unsubscribed", "hard_bounce", "complaint", "manual"]
Source = Literal["page", "one_click", "complaint", "bounce", "import", "sunset", "operator"]
#: Why :meth:`CustomerState.allows` says no (the pipeline's eligibility reason codes).
BlockReason = Literal["complained", "bounced", "suppressed", "unsubscribed", "frequency_never", "frequency_not_due"]

FREQUENCIES: Final[tuple[Frequency, ...]] = get_args(Frequency)
CAMPAIGNS: Final[tuple[Campaign, ...]] = get_args(Campaign)
SUPPRESSION_REASONS: Final[tuple[SuppressionReason, ...]] = get_args(SuppressionReason)
SOURCES: Final[tuple[Source, ...]] = get_args(Source)
DEFAULT_FREQUENCY: Final[Frequency] = "weekly"

#: Which campaigns each frequency receives (the preference is the most frequent one wanted).
CAMPAIGNS_FOR: Final[Mapping[Frequency, frozenset[Campaign]]] = {
    "weekly": frozenset({"weekly", "monthly", "yearly"}),
    "monthly": frozenset({"monthly", "yearly"}),
    "yearly": frozenset({"yearly"}),
    "never": frozenset(),
}
#: Most severe first: when several suppressions are active, the first one is reported.
_SUPPRESSION_PRECEDENCE: Final[tuple[SuppressionReason, ...]] = ("complaint", "hard_bounce", "manual", "unsubscribed")
_BLOCK_REASON: Final[Mapping[SuppressionReason, BlockReason]] = {
    "complaint": "complained",
    "hard_bounce": "bounced",
    "manual": "suppressed",
    "unsubscribed": "unsubscribed",
}
#: Suppressions that an opt-in from the preferences page lifts (``manual`` is the operator's).
OPT_IN_LIFTS: Final[tuple[SuppressionReason, ...]] = ("unsubscribed", "complaint", "hard_bounce")

_IN_CHUNK: Final = 5_000          # ids per ``IN (...)`` query (well under SQLite's 32,766 variables)
_FULL_SCAN_ABOVE: Final = 50_000  # above this many ids, read all non-default rows once instead


class StoreError(ValueError):
    """A bad argument to the store (unknown frequency, reason, source or campaign; bad id)."""


@dataclass(frozen=True, slots=True)
class CustomerState:
    """What the pipeline needs to decide whether to email one customer."""

    frequency: Frequency = DEFAULT_FREQUENCY
    suppression: SuppressionReason | None = None

    def allows(self, campaign: str) -> tuple[bool, BlockReason | None]:
        """``(True, None)`` if ``campaign`` may be sent now, else ``(False, reason)``."""
        if campaign not in CAMPAIGNS:
            raise StoreError(f"unknown campaign {campaign!r}; expected one of {', '.join(CAMPAIGNS)}")
        if self.suppression is not None:
            return False, _BLOCK_REASON[self.suppression]
        if self.frequency == "never":
            return False, "frequency_never"
        if campaign not in CAMPAIGNS_FOR[self.frequency]:
            return False, "frequency_not_due"
        return True, None


DEFAULT_STATE: Final = CustomerState()


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    """One known customer as the preferences page shows it."""

    customer_id: str
    locale: str | None
    frequency: Frequency
    frequency_chosen: bool
    suppression: SuppressionReason | None  # the most severe active one
    suppressed_since: datetime | None
    active_suppressions: frozenset[SuppressionReason]

    @property
    def state(self) -> CustomerState:
        return CustomerState(self.frequency, self.suppression)


@dataclass(frozen=True, slots=True)
class Change:
    """One row of the append-only change log."""

    customer_id: str
    change: Literal["frequency", "suppress", "lift"]
    old: str | None
    new: str | None
    source: Source
    detail: str | None
    at: datetime


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC (SQLite has no time zones; PostgreSQL gets ``timestamptz``)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise StoreError("naive datetime given to the preference store; pass an aware UTC datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


metadata = sa.MetaData()

customers = sa.Table(
    "pc_customers",
    metadata,
    sa.Column("customer_id", sa.String(MAX_ID_LENGTH), primary_key=True),
    sa.Column("locale", sa.String(35)),
    sa.Column("frequency", sa.String(10)),  # NULL: never chosen = DEFAULT_FREQUENCY
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # Only customers who chose: what overrides() reads for a million-customer batch.
    sa.Index(
        "pc_customers_chosen",
        "frequency",
        sqlite_where=sa.text("frequency IS NOT NULL"),
        postgresql_where=sa.text("frequency IS NOT NULL"),
    ),
)

suppressions = sa.Table(
    "pc_suppressions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(MAX_ID_LENGTH), nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("since", UTCDateTime(), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("lifted_at", UTCDateTime()),
    sa.Column("lifted_by", sa.String(20)),
    sa.Index("pc_suppressions_customer", "customer_id"),
    # One active suppression per (customer, reason); lifted rows stay as history.
    sa.Index(
        "pc_suppressions_active",
        "customer_id",
        "reason",
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    ),
)

changes_log = sa.Table(
    "pc_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(MAX_ID_LENGTH), nullable=False, index=True),
    sa.Column("change", sa.String(20), nullable=False),
    sa.Column("old", sa.String(20)),
    sa.Column("new", sa.String(20)),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("detail", sa.String(200)),
    sa.Column("at", UTCDateTime(), nullable=False),
)

_SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER IF NOT EXISTS pc_changes_no_update BEFORE UPDATE ON pc_changes "
    "BEGIN SELECT RAISE(ABORT, 'pc_changes is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS pc_changes_no_delete BEFORE DELETE ON pc_changes "
    "BEGIN SELECT RAISE(ABORT, 'pc_changes is append-only'); END",
)


DATABASE_URL_ENV: Final = "VALUEMAIL_PREFERENCES_URL"


def default_url(home: Path) -> str:
    """The default store: ``sqlite:///<home>/preferences.sqlite``."""
    return f"sqlite:///{Path(home).resolve() / 'preferences.sqlite'}"


def store_url(config: Config, environ: Mapping[str, str] | None = None) -> str:
    """``$VALUEMAIL_PREFERENCES_URL``, else ``preference_centre.database_url``, else :func:`default_url`."""
    env = os.environ if environ is None else environ
    configured = config.section("preference_centre").get("database_url")
    return str(env.get(DATABASE_URL_ENV) or configured or default_url(config.home))


def open_store(config: Config, environ: Mapping[str, str] | None = None) -> "PreferenceStore":
    """The configured store — what the pipeline opens (once per process) to read and record preferences."""
    return PreferenceStore(store_url(config, environ))


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise StoreError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")


def _check_id(customer_id: str) -> str:
    problem = id_problem(customer_id) if isinstance(customer_id, str) else "is not a string"
    if problem:
        raise StoreError(f"customer_id {problem}")
    return customer_id


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _most_severe(reasons: Iterable[str]) -> SuppressionReason | None:
    present = set(reasons)
    for reason in _SUPPRESSION_PRECEDENCE:
        if reason in present:
            return reason
    return None


class PreferenceStore:
    """Preferences, suppressions and their change log in one SQLAlchemy database.

    Thread-safe and multi-process-safe; create one per process and share it.
    ``clock`` returns the current time as an aware datetime (tests inject one).
    """

    def __init__(self, url: str, *, clock: Callable[[], datetime] = _utcnow, busy_timeout_s: float = 30.0) -> None:
        self.url = url
        self._clock = clock
        parsed = sa.engine.make_url(url)
        self._sqlite = parsed.get_backend_name() == "sqlite"
        if self._sqlite:
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = sa.create_engine(
                url,
                connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
                pool_size=8,
                max_overflow=24,
                pool_timeout=busy_timeout_s,
            )
            self._install_sqlite_hooks(busy_timeout_s)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
        self._create_lock = threading.Lock()
        self._create_schema()

    # -- setup -------------------------------------------------------------------
    def _install_sqlite_hooks(self, busy_timeout_s: float) -> None:
        """WAL, a busy timeout, and ``BEGIN IMMEDIATE`` for writes (no read→write upgrade deadlocks)."""

        @sa.event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cursor.execute("PRAGMA synchronous=FULL")  # an unsubscribe must survive a power cut
            cursor.close()

        @sa.event.listens_for(self.engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("pc_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    def _create_schema(self) -> None:
        with self._create_lock, self._write() as conn:
            metadata.create_all(conn)
            if self._sqlite:
                for statement in _SQLITE_APPEND_ONLY:
                    conn.exec_driver_sql(statement)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
        with self.engine.connect() as conn:
            conn.execution_options(pc_write=True)
            with conn.begin():
                yield conn

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def __enter__(self) -> "PreferenceStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PreferenceStore({sa.engine.make_url(self.url).render_as_string(hide_password=True)!r})"

    # -- registration (called by the pipeline) -------------------------------------------
    def upsert_customers(self, rows: Iterable[tuple[str, str | None]], *, batch_size: int = 10_000) -> int:
        """Register customers with their locale (``[(customer_id, locale), ...]``); returns rows written.

        Frequencies and suppressions are left as they are; the change log is not touched
        (a locale is not a preference).  Links for a customer the store has never heard of
        are answered "unknown link", so the pipeline registers every customer it emails.
        """
        total = 0
        batch: list[dict[str, Any]] = []
        for customer_id, locale in rows:
            batch.append({"customer_id": _check_id(customer_id), "locale": (locale or None)})
            if len(batch) >= batch_size:
                total += self._upsert_batch(batch)
                batch = []
        if batch:
            total += self._upsert_batch(batch)
        return total

    def _insert(self) -> Any:
        if self._sqlite:
            from sqlalchemy.dialects.sqlite import insert
        elif self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:  # pragma: no cover - other backends are not supported
            raise StoreError(f"unsupported database backend {self.engine.dialect.name!r} (SQLite or PostgreSQL)")
        return insert(customers)

    def _upsert_batch(self, batch: list[dict[str, Any]]) -> int:
        now = self._clock()
        dedup = {row["customer_id"]: row for row in batch}  # the last locale given wins
        values = [{**row, "created_at": now, "updated_at": now} for row in dedup.values()]
        stmt = self._insert()
        stmt = stmt.on_conflict_do_update(
            index_elements=[customers.c.customer_id],
            set_={"locale": stmt.excluded.locale, "updated_at": stmt.excluded.updated_at},
            where=customers.c.locale.is_distinct_from(stmt.excluded.locale),
        )
        with self._write() as conn:
            conn.execute(stmt, values)
        return len(values)

    # -- reads -------------------------------------------------------------------------
    def exists(self, customer_id: str) -> bool:
        """Whether the store has heard of this customer (registered or changed)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(customers.c.customer_id).where(customers.c.customer_id == customer_id)).first()
        return row is not None

    def frequency(self, customer_id: str) -> Frequency:
        """The customer's chosen frequency, ``weekly`` when never chosen or unknown."""
        return self.state(customer_id).frequency

    def state(self, customer_id: str) -> CustomerState:
        """Frequency and the most severe active suppression of one customer."""
        return self.bulk_state([customer_id])[customer_id]

    def is_sendable(self, customer_id: str, campaign: str) -> tuple[bool, BlockReason | None]:
        """Whether ``campaign`` may go to this customer *now*; else the reason code.

        Call it (or :meth:`blocked` for a batch) right before each send, not only when the
        batch is built: the customer may have unsubscribed in between.
        """
        return self.state(customer_id).allows(campaign)

    def bulk_state(self, customer_ids: Iterable[str]) -> dict[str, CustomerState]:
        """:class:`CustomerState` for every id given (unknown ids get the default state).

        Small requests use chunked ``IN`` queries; above 50,000 ids the store instead reads
        every non-default row once (customers who chose a frequency, active suppressions)
        and fills in the rest with the shared default — about a second for a million ids.
        """
        ids = list(dict.fromkeys(customer_ids))
        if len(ids) > _FULL_SCAN_ABOVE:
            overrides = self.overrides()
            return {cid: overrides.get(cid, DEFAULT_STATE) for cid in ids}
        frequencies: dict[str, str] = {}
        suppressed: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(ids, _IN_CHUNK):
                for cid, freq in conn.execute(
                    sa.select(customers.c.customer_id, customers.c.frequency).where(
                        customers.c.customer_id.in_(chunk), customers.c.frequency.is_not(None)
                    )
                ):
                    frequencies[cid] = freq
                for cid, reason in conn.execute(
                    sa.select(suppressions.c.customer_id, suppressions.c.reason).where(
                        suppressions.c.customer_id.in_(chunk), suppressions.c.active
                    )
                ):
                    suppressed.setdefault(cid, []).append(reason)
        result: dict[str, CustomerState] = {}
        for cid in ids:
            freq = frequencies.get(cid)
            reasons = suppressed.get(cid)
            if freq is None and reasons is None:
                result[cid] = DEFAULT_STATE
            else:
                result[cid] = CustomerState(freq or DEFAULT_FREQUENCY, _most_severe(reasons or ()))  # type: ignore[arg-type]
        return result

    def overrides(self) -> dict[str, CustomerState]:
        """Every customer whose state differs from the default (weekly, not suppressed).

        Anyone absent from the result gets :data:`DEFAULT_STATE`.  This is the cheapest
        form for a whole-population join (e.g. load it into DuckDB as a small table).
        """
        frequencies: dict[str, str] = {}
        suppressed: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for cid, freq in conn.execute(
                sa.select(customers.c.customer_id, customers.c.frequency).where(
                    customers.c.frequency.is_not(None), customers.c.frequency != DEFAULT_FREQUENCY
                )
            ):
                frequencies[cid] = freq
            for cid, reason in conn.execute(
                sa.select(suppressions.c.customer_id, suppressions.c.reason).where(suppressions.c.active)
            ):
                suppressed.setdefault(cid, []).append(reason)
        result: dict[str, CustomerState] = {}
        for cid in frequencies.keys() | suppressed.keys():
            result[cid] = CustomerState(
                frequencies.get(cid, DEFAULT_FREQUENCY),  # type: ignore[arg-type]
                _most_severe(suppressed.get(cid, ())),
            )
        return result

    def blocked(self, customer_ids: Iterable[str], campaign: str) -> dict[str, BlockReason]:
        """The send-time re-check for a batch: ``{customer_id: reason}`` for those who must not get ``campaign``."""
        _check(campaign, CAMPAIGNS, "campaign")
        out: dict[str, BlockReason] = {}
        for cid, state in self.bulk_state(customer_ids).items():
            ok, reason = state.allows(campaign)
            if not ok:
                out[cid] = reason  # type: ignore[assignment]
        return out

    def profile(self, customer_id: str) -> CustomerProfile | None:
        """Everything the preferences page shows, or ``None`` for a customer the store doesn't know."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(customers.c.locale, customers.c.frequency).where(customers.c.customer_id == customer_id)
            ).first()
            if row is None:
                return None
            active = conn.execute(
                sa.select(suppressions.c.reason, suppressions.c.since).where(
                    suppressions.c.customer_id == customer_id, suppressions.c.active
                )
            ).all()
        reason = _most_severe(r.reason for r in active)
        since = next((r.since for r in active if r.reason == reason), None)
        return CustomerProfile(
            customer_id=customer_id,
            locale=row.locale,
            frequency=row.frequency or DEFAULT_FREQUENCY,
            frequency_chosen=row.frequency is not None,
            suppression=reason,
            suppressed_since=since,
            active_suppressions=frozenset(r.reason for r in active),
        )

    def changes(self, customer_id: str) -> list[Change]:
        """The customer's change log, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(changes_log).where(changes_log.c.customer_id == customer_id).order_by(changes_log.c.id)
            ).all()
        return [
            Change(r.customer_id, r.change, r.old, r.new, r.source, r.detail, r.at)  # type: ignore[arg-type]
            for r in rows
        ]

    # -- writes --------------------------------------------------------------------------
    def _lock_customer(self, conn: Connection, customer_id: str, now: datetime) -> Any:
        """Create the customer row if missing, then lock it (serialises writers per customer)."""
        conn.execute(
            self._insert()
            .values(customer_id=customer_id, locale=None, frequency=None, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=[customers.c.customer_id])
        )
        return conn.execute(
            sa.select(customers.c.frequency).where(customers.c.customer_id == customer_id).with_for_update()
        ).one()

    def _log(
        self,
        conn: Connection,
        customer_id: str,
        change: str,
        old: str | None,
        new: str | None,
        source: str,
        detail: str | None,
        now: datetime,
    ) -> None:
        conn.execute(
            changes_log.insert().values(
                customer_id=customer_id,
                change=change,
                old=old,
                new=new,
                source=source,
                detail=(detail or None) and detail[:200],
                at=now,
            )
        )

    def _set_frequency(
        self, conn: Connection, customer_id: str, frequency: str, source: str, detail: str | None, now: datetime
    ) -> bool:
        current = self._lock_customer(conn, customer_id, now).frequency
        if current == frequency:
            return False
        conn.execute(
            customers.update().where(customers.c.customer_id == customer_id).values(frequency=frequency, updated_at=now)
        )
        self._log(conn, customer_id, "frequency", current or DEFAULT_FREQUENCY, frequency, source, detail, now)
        return True

    def _lift(
        self, conn: Connection, customer_id: str, reasons: list[str], source: str, now: datetime
    ) -> list[SuppressionReason]:
        self._lock_customer(conn, customer_id, now)
        rows = conn.execute(
            sa.select(suppressions.c.id, suppressions.c.reason)
            .where(suppressions.c.customer_id == customer_id, suppressions.c.active, suppressions.c.reason.in_(reasons))
            .order_by(suppressions.c.id)
        ).all()
        for row in rows:
            conn.execute(
                suppressions.update()
                .where(suppressions.c.id == row.id)
                .values(active=False, lifted_at=now, lifted_by=source)
            )
            self._log(conn, customer_id, "lift", row.reason, None, source, None, now)
        return [row.reason for row in rows]

    def set_frequency(self, customer_id: str, frequency: str, source: str, *, detail: str | None = None) -> bool:
        """Record the customer's chosen frequency; returns whether anything changed.

        Setting ``never`` is a preference, not a suppression: it blocks every campaign
        (reason ``frequency_never``) and is undone by choosing another frequency.
        """
        _check_id(customer_id)
        _check(frequency, FREQUENCIES, "frequency")
        _check(source, SOURCES, "source")
        with self._write() as conn:
            return self._set_frequency(conn, customer_id, frequency, source, detail, self._clock())

    def suppress(self, customer_id: str, reason: str, source: str, *, detail: str | None = None) -> bool:
        """Add an active suppression; returns ``False`` if one with this reason was already active."""
        _check_id(customer_id)
        _check(reason, SUPPRESSION_REASONS, "suppression reason")
        _check(source, SOURCES, "source")
        now = self._clock()
        with self._write() as conn:
            self._lock_customer(conn, customer_id, now)
            already = conn.execute(
                sa.select(suppressions.c.id).where(
                    suppressions.c.customer_id == customer_id, suppressions.c.reason == reason, suppressions.c.active
                )
            ).first()
            if already is not None:
                return False
            conn.execute(
                suppressions.insert().values(customer_id=customer_id, reason=reason, active=True, since=now, source=source)
            )
            self._log(conn, customer_id, "suppress", None, reason, source, detail, now)
        return True

    def unsubscribe(self, customer_id: str, source: str, *, detail: str | None = None) -> bool:
        """Suppress with reason ``unsubscribed`` (idempotent: ``False`` if already unsubscribed)."""
        return self.suppress(customer_id, "unsubscribed", source, detail=detail)

    def lift_suppression(self, customer_id: str, reasons: Iterable[str], source: str) -> list[SuppressionReason]:
        """Deactivate the customer's active suppressions with these reasons; returns those lifted.

        This is how an operator lifts a ``manual`` suppression (``source="operator"``).
        """
        _check_id(customer_id)
        wanted = list(reasons)
        for reason in wanted:
            _check(reason, SUPPRESSION_REASONS, "suppression reason")
        _check(source, SOURCES, "source")
        with self._write() as conn:
            return self._lift(conn, customer_id, wanted, source, self._clock())

    def resubscribe(self, customer_id: str, source: str, *, frequency: str | None = None) -> list[SuppressionReason]:
        """Opt back in: lift ``unsubscribed``, ``complaint`` and ``hard_bounce`` (not ``manual``).

        With ``frequency`` the new choice is recorded in the same transaction (``never`` is
        refused: opting in to nothing is not an opt-in).  Returns the suppressions lifted.
        """
        _check_id(customer_id)
        _check(source, SOURCES, "source")
        if frequency is not None:
            _check(frequency, FREQUENCIES, "frequency")
            if frequency == "never":
                raise StoreError("resubscribe with frequency 'never' is not an opt-in; use set_frequency")
        now = self._clock()
        with self._write() as conn:
            lifted = self._lift(conn, customer_id, list(OPT_IN_LIFTS), source, now)
            if frequency is not None:
                self._set_frequency(conn, customer_id, frequency, source, None, now)
        return lifted
