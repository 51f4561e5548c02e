"""Ingest event and customer files (CSV, NDJSON, Parquet) into the DuckDB warehouse.

Pure code (no Dagster).  :func:`ingest_paths` is the one entry point; it takes files,
folders (searched recursively) and ``s3://bucket/prefix`` URIs and returns an
:class:`IngestReport`.

How a run works — set-based DuckDB SQL throughout, no Python loop over rows:

1. **Discover** every file first (a missing path fails before anything is written).
   Folders are walked recursively in sorted order; files with other suffixes, hidden
   files and ``_SUCCESS``-style markers are ignored.  S3 objects are listed up front and
   each downloaded into a temporary folder just before it is read.
2. **Skip known bytes**: the sha256 of each file is looked up in ``ingested_files``; the
   same bytes (under any name, local or S3) are never read twice.
3. **Recognise** the file by its columns: events need ``customer_id``, ``occurred_at`` and
   ``event_type``; customers need ``customer_id``, ``email`` and ``signed_up_at``.
   (NDJSON writers leave out empty fields, so there one column only events — or only
   customers — have is enough.)  Anything else raises :class:`IngestError` naming the file
   and the columns found.
4. **Stage**: one ``INSERT … SELECT`` reads the file into its own staging table, parsing
   every field, computing at most one check code per row (the first failing check), a
   readable reason and — for bad rows only — the raw row as JSON.  CSV is read with
   explicit VARCHAR columns and ``store_rejects``, so malformed lines are quarantined with their
   row number rather than failing the file; NDJSON is read line by line for the same
   reason.  Row numbers are 1-based data rows in file order (header not counted) and
   come from the scan itself (Parquet ``file_row_number``; an order-preserving
   ``row_number() OVER ()`` for text), never from the order rows arrive in after a
   parallel plan — a parallel INSERT stops preserving order as soon as the plan joins.
   For NDJSON the row number is the line number; for CSV it equals line − 1 unless the
   file has blank lines (skipped, not counted) or quoted multi-line fields — then the
   number DuckDB reports for a *malformed* line can be off by those extra lines.
   Steps 2–4 run ahead on ``ingest.readers`` worker connections (default one per core),
   into an in-memory database attached for the run: the next files are read while the
   previous batch commits, and text files — whose ordered row numbering keeps each scan on
   one thread — are parsed side by side.  Results are taken in file order, so batches,
   skips and failures are exactly those of a one-file-at-a-time run.
5. **Flush** (one transaction per batch of files): duplicates of ``event_id`` within the
   batch and against stored events are found with a hash semi-join whose build side is
   the (small) batch, rows are inserted into ``events`` with an anti-join on the few
   conflicting rows, quarantine rows and one ``ingested_files`` row per file are written,
   then COMMIT.  Consecutive event files are staged into one batch (up to
   ``ingest.batch_rows`` rows) so the stored ids are scanned once per batch, not once
   per file.  Customers are upserted one file at a time (the later file wins).

Failure semantics: an empty file (0 bytes, or nothing but blank lines) is quarantined as a
file (one ``quarantine`` row, ``kind = 'file'``, ``row_number`` NULL, written once per file
name) and reported; the run goes on.  An unreadable, corrupt or unrecognised file stops the
run with an :class:`IngestError` naming it.  Nothing from that file is committed; every file before
it (including the files already staged in the same batch) is committed first, so
re-running after fixing or removing the file continues where it stopped.
``ingest_paths`` manages its own transactions: call it outside an open transaction.

Event contract (see DESIGN.md): ``event_id`` optional — otherwise the md5 of the
canonical (parsed, UTC) content, so the same event re-ingested from any file or format
gets the same id; identical rows without ids are therefore one event.  ``occurred_at``
ISO 8601, naive means UTC, offsets converted to UTC, not before ``ingest.earliest_timestamp``
(default 1990-01-01; ``signed_up_at`` too).  ``quantity`` whole number ≥ 0,
default 1.  ``duration_saved_s``/``amount_saved`` optional ≥ 0, ``amount_saved`` needs a
3-letter ``currency``.  ``properties`` optional JSON.  Unknown event types are kept with
``known_type = false`` and flagged.  ``customer_id`` (events and customers) must be a valid
customer id (``valuemail.ids``: 1–200 characters, no ``@``), else the row is rejected.
Column names are matched case-insensitively;
unknown columns are ignored.  Parquet strings are taken as written; text formats are
trimmed.

Customers: ``customer_id``, ``signed_up_at`` (ISO 8601, not in the future) and ``locale``
(a language tag) are required — else the row is rejected.  A missing or invalid email
keeps the customer (stored as given, '' when missing) with a 'flagged' quarantine row, so
eligibility can say ``invalid_email``; an unknown or missing timezone becomes UTC, a
missing plan ``unknown``, an invalid ``hourly_rate`` or ``currency`` NULL, an
``hourly_rate`` without currency the value model's currency — each flagged.  Within a
file the last row of a ``customer_id`` wins (earlier rows with other content are
rejected); a later file updates the stored row (upsert; unchanged rows are not touched).  A
column the file does not have keeps its stored value (a new customer gets the default, not
flagged), and an update with an empty email for a customer whose stored email is not empty
is rejected as a whole.

Cost (measured on this project's 2-core machine, see ``bench/stage_ingest.py``): about
1.6–2 CPU-µs per Parquet event and 2.2–2.7 per CSV event, of which ~1 µs is DuckDB
storing the row at all (a bare ``CREATE TABLE AS`` costs 0.7–1.2).  The rest is staging
with all checks (~0.5), the duplicate check (~0.25) and the stored-id probe.  Peak RSS
stays near 3 GB at 50M events (``ingest.memory_limit``, default 3GB, bounds DuckDB).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import itertools
import os
import queue
import re
import tempfile
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import duckdb

from valuemail.config import Config
from valuemail.ids import id_invalid_sql, id_problem_sql
from valuemail.text import printable
from valuemail.warehouse import transaction

Progress = Callable[[str], None] | None

SUFFIX_FORMATS: Mapping[str, str] = {
    ".csv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".parquet": "parquet",
}

EVENT_COLUMNS = ("event_id", "customer_id", "occurred_at", "event_type", "quantity",
                 "duration_saved_s", "amount_saved", "currency", "properties")
EVENT_SIGNATURE = frozenset({"customer_id", "occurred_at", "event_type"})
CUSTOMER_COLUMNS = ("customer_id", "email", "name", "locale", "timezone", "plan", "country",
                    "signed_up_at", "company", "hourly_rate", "currency")
CUSTOMER_SIGNATURE = frozenset({"customer_id", "email", "signed_up_at"})

DEFAULT_BATCH_ROWS = 8_000_000
MAX_READERS = 4  # default for ingest.readers = 0: one reader per CPU core, at most this many
DEFAULT_MEMORY_LIMIT = "3GB"
DEFAULT_EARLIEST = datetime(1990, 1, 1)
DEFAULT_TIMEZONE = "UTC"
UNKNOWN_PLAN = "unknown"
EMPTY_FILE = "empty file (no header, no rows): nothing to ingest"
_EMPTY_PROBE_BYTES = 4096  # larger files are never empty

# Check codes are "<field>:<check>" ("row:…" for whole-row problems).  Codes in FLAGGED[kind]
# keep the row (events: known_type = false; customers: a default or NULL is stored) and are
# recorded with severity 'flagged'; every other code rejects the row.
FLAGGED: Mapping[str, frozenset[str]] = {
    "events": frozenset({"event_type:unknown"}),
    "customers": frozenset({
        "email:missing", "email:invalid", "timezone:missing", "timezone:unknown", "plan:missing",
        "hourly_rate:not_number", "hourly_rate:negative", "currency:invalid", "currency:assumed"}),
}

_STAGE = "_vm_ingest_stage"
_FILES = "_vm_ingest_files"
_FATE = "_vm_ingest_fate"
_REJECTS = "_vm_ingest_rejects"
_REJECT_SCANS = "_vm_ingest_reject_scans"
_HASH_SEP = "chr(31)"  # ASCII unit separator between canonical fields

_TIMESTAMP_TYPES = ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATE",
                    "TIMESTAMP WITH TIME ZONE")
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "UHUGEINT")
_FLOAT_TYPES = ("FLOAT", "DOUBLE")


class IngestError(ValueError):
    """A file could not be ingested (unreadable, corrupt, unrecognised); the message names it.

    ``partial`` holds the report of the files committed before the failure.  The message is
    printable: control characters from file names or headers are shown escaped (``\\x1b``).
    """

    def __init__(self, message: str, source_file: str | None = None,
                 partial: "IngestReport | None" = None) -> None:
        super().__init__(printable(message))
        self.source_file = source_file
        self.partial = partial


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileResult:
    """What happened to one file.

    ``rows_read == rows_loaded + rows_rejected + rows_unchanged`` for loaded files;
    flagged rows are loaded *and* recorded in quarantine.
    """

    source_file: str
    status: str                 # "loaded" | "skipped" (same bytes already ingested) | "quarantined" (empty file)
    kind: str = ""              # "events" | "customers" ("" when skipped)
    fmt: str = ""               # "csv" | "ndjson" | "parquet"
    sha256: str = ""
    rows_read: int = 0
    rows_loaded: int = 0        # events inserted / customers inserted or changed
    rows_rejected: int = 0      # quarantined with severity 'rejected' (not loaded)
    rows_flagged: int = 0       # quarantined with severity 'flagged' (loaded)
    rows_unchanged: int = 0     # already stored with the same content (idempotent re-ingest)
    seconds: float = 0.0
    note: str = ""

    def describe(self) -> str:
        name = printable(self.source_file)
        if self.status in ("skipped", "quarantined"):
            return f"{name}: {self.status}, {printable(self.note)}"
        parts = [f"{self.rows_read:,} rows", f"{self.rows_loaded:,} loaded"]
        if self.rows_rejected:
            parts.append(f"{self.rows_rejected:,} rejected")
        if self.rows_flagged:
            parts.append(f"{self.rows_flagged:,} flagged")
        if self.rows_unchanged:
            parts.append(f"{self.rows_unchanged:,} already stored")
        return f"{name}: {self.kind} ({self.fmt}), " + ", ".join(parts) + f" [{self.seconds:.1f}s]"


@dataclass(frozen=True)
class IngestReport:
    """The outcome of one :func:`ingest_paths` call."""

    files: tuple[FileResult, ...] = ()
    seconds: float = 0.0
    ignored: tuple[str, ...] = ()   # files in scanned folders / prefixes with other suffixes

    def _sum(self, attr: str, kind: str | None = None) -> int:
        return sum(getattr(f, attr) for f in self.files
                   if f.status == "loaded" and (kind is None or f.kind == kind))

    @property
    def files_loaded(self) -> int:
        return sum(1 for f in self.files if f.status == "loaded")

    @property
    def files_skipped(self) -> int:
        return sum(1 for f in self.files if f.status == "skipped")

    @property
    def files_quarantined(self) -> int:
        return sum(1 for f in self.files if f.status == "quarantined")

    @property
    def events_loaded(self) -> int:
        return self._sum("rows_loaded", "events")

    @property
    def customers_loaded(self) -> int:
        return self._sum("rows_loaded", "customers")

    @property
    def quarantined(self) -> int:
        """Rows rejected (quarantined and not loaded), events and customers."""
        return self._sum("rows_rejected")

    @property
    def flagged(self) -> int:
        """Rows loaded but recorded in quarantine as 'flagged' (e.g. unknown event type)."""
        return self._sum("rows_flagged")

    @property
    def unchanged(self) -> int:
        return self._sum("rows_unchanged")

    @property
    def rows_read(self) -> int:
        return self._sum("rows_read")

    def metadata(self) -> dict[str, int | float | str]:
        """Flat numbers for Dagster asset metadata / the run report."""
        return {
            "files_seen": len(self.files), "files_loaded": self.files_loaded,
            "files_skipped": self.files_skipped, "files_quarantined": self.files_quarantined,
            "files_ignored": len(self.ignored),
            "rows_read": self.rows_read, "events_loaded": self.events_loaded,
            "customers_loaded": self.customers_loaded, "rows_rejected": self.quarantined,
            "rows_flagged": self.flagged, "rows_unchanged": self.unchanged,
            "seconds": round(self.seconds, 3),
        }

    def describe(self) -> str:
        lines = [f"ingest: {len(self.files)} file(s): {self.files_loaded} loaded, "
                 f"{self.files_skipped} skipped (already ingested)"
                 + (f", {self.files_quarantined} quarantined" if self.files_quarantined else "")
                 + f" in {self.seconds:.1f}s"]
        for kind in ("events", "customers"):
            if any(f.kind == kind and f.status == "loaded" for f in self.files):
                lines.append(
                    f"  {kind}: {self._sum('rows_read', kind):,} rows read, {self._sum('rows_loaded', kind):,} loaded, "
                    f"{self._sum('rows_rejected', kind):,} rejected, {self._sum('rows_flagged', kind):,} flagged, "
                    f"{self._sum('rows_unchanged', kind):,} already stored")
        if self.quarantined or self.flagged or self.files_quarantined:
            lines.append("  see: SELECT kind, severity, field, reason, count(*) FROM quarantine GROUP BY ALL")
        if self.ignored:
            lines.append(f"  ignored {len(self.ignored)} file(s) with other suffixes, e.g. {printable(self.ignored[0])}")
        lines.extend("  " + f.describe() for f in self.files)
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IngestSettings:
    """The ``[ingest]`` config section plus the value model facts ingest needs."""

    future_tolerance_hours: float = 24.0
    earliest_timestamp: datetime = DEFAULT_EARLIEST
    batch_rows: int = DEFAULT_BATCH_ROWS
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT
    readers: int = 2
    known_event_types: tuple[str, ...] = ()
    value_model_version: str = ""
    default_currency: str = "USD"

    @classmethod
    def from_config(cls, config: Config) -> "IngestSettings":
        section = config.section("ingest")
        model = config.value_model
        memory_limit = section.get("memory_limit", DEFAULT_MEMORY_LIMIT)
        return cls(
            future_tolerance_hours=float(section.get("future_tolerance_hours", 24)),
            earliest_timestamp=_earliest(section.get("earliest_timestamp", DEFAULT_EARLIEST)),
            batch_rows=max(1, int(section.get("batch_rows", DEFAULT_BATCH_ROWS))),
            readers=max(1, int(section.get("readers", 0)) or min(MAX_READERS, os.cpu_count() or 1)),
            memory_limit=str(memory_limit) if memory_limit else None,
            known_event_types=tuple(sorted(model.events)),
            value_model_version=model.version,
            default_currency=model.currency,
        )


def _earliest(value: object) -> datetime:
    """``ingest.earliest_timestamp`` (an ISO 8601 date or timestamp, checked at load) as naive UTC."""
    parsed = datetime.fromisoformat(str(value))
    return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


def _floor_text(floor: datetime) -> str:
    return floor.date().isoformat() if floor == datetime.combine(floor.date(), datetime.min.time()) else floor.isoformat()


# --------------------------------------------------------------------------------------
# Small SQL helpers
# --------------------------------------------------------------------------------------
def sql_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def _base_type(duck_type: str) -> str:
    upper = duck_type.upper()
    return "DECIMAL" if upper.startswith("DECIMAL") else upper


def _quote_value(expr: str) -> str:
    """SQL for ``'value'`` shown inside a reason (truncated to 80 characters)."""
    return f"('''' || left(CAST({expr} AS VARCHAR), 80) || '''')"


# --------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceFile:
    """One file to ingest: where to read it now, and the name recorded in the warehouse."""

    name: str                        # absolute local path, or the s3:// URI
    fmt: str
    local_path: Path | None = None   # None: an S3 object not downloaded yet
    s3_object: object | None = None  # valuemail.s3.S3Object


def format_of(path: str) -> str | None:
    return SUFFIX_FORMATS.get(Path(path).suffix.lower())


def _ignorable(name: str) -> bool:
    return name.startswith(".") or name.startswith("_")


def discover(paths: Sequence[str], s3_client: object | None = None) -> tuple[list[SourceFile], list[str]]:
    """Expand files, folders and s3:// prefixes into the files to ingest, in order.

    Returns ``(sources, ignored)``.  Raises IngestError for a missing path or an
    explicitly named file of an unsupported type.
    """
    from valuemail import s3

    sources: list[SourceFile] = []
    ignored: list[str] = []
    for raw in paths:
        text = str(raw)
        if s3.is_s3_uri(text):
            try:
                objects = s3.list_objects(text, s3_client)
            except s3.S3Error as exc:
                raise IngestError(str(exc), source_file=text) from exc
            for obj in objects:
                fmt = format_of(obj.key)
                if fmt is None or _ignorable(obj.name):
                    ignored.append(obj.uri)
                else:
                    sources.append(SourceFile(obj.uri, fmt, None, obj))
            continue
        path = Path(text).expanduser()
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                rel_parts = child.relative_to(path).parts
                fmt = format_of(child.name)
                if fmt is None or any(_ignorable(part) for part in rel_parts):
                    ignored.append(str(child.resolve()))
                else:
                    sources.append(SourceFile(str(child.resolve()), fmt, child.resolve()))
        elif path.is_file():
            fmt = format_of(path.name)
            if fmt is None:
                raise IngestError(
                    f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}; "
                    f"expected one of {', '.join(sorted(SUFFIX_FORMATS))}", source_file=str(path))
            sources.append(SourceFile(str(path.resolve()), fmt, path.resolve()))
        else:
            raise IngestError(f"{path}: no such file or folder", source_file=str(path))
    return sources, ignored


def sha256_file(path: Path, chunk: int = 4 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------
# Inspecting a file: columns and kind
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileShape:
    """The columns of a file: normalised (lower-case) name → (original name, DuckDB type)."""

    fmt: str
    kind: str
    columns: Mapping[str, tuple[str, str]]

    def has(self, name: str) -> bool:
        return name in self.columns

    def ref(self, name: str) -> str:
        """SQL referring to the column's raw value in the staging source query."""
        if self.fmt == "ndjson":
            return f"_j.{sql_ident(name)}"
        return sql_ident(self.columns[name][0])

    def type_of(self, name: str) -> str:
        return _base_type(self.columns[name][1]) if name in self.columns else "VARCHAR"


CSV_DELIMITERS = (",", ";", "\t", "|")


def csv_header(path: Path) -> tuple[str, list[str]]:
    """``(delimiter, column names)`` from a CSV file's header line.

    The delimiter is whichever of , ; TAB | occurs most in the header.  Decided here rather
    than by DuckDB's sniffer, which samples data rows and can be thrown off by the very
    malformed lines we want to quarantine; the reader then runs with ``auto_detect = false``.
    """
    with path.open("rb") as fh:
        raw = fh.readline(1 << 20)
    text = re.split("[\r\n]", raw.decode("utf-8-sig", errors="replace"), maxsplit=1)[0]  # CR-only files too
    counts = {d: text.count(d) for d in CSV_DELIMITERS}
    delim = max(CSV_DELIMITERS, key=lambda d: counts[d])
    delim = delim if counts[delim] else ","
    names = next(csv.reader([text], delimiter=delim), [])
    return delim, names


def _csv_reader(path: Path, header: tuple[str, list[str]], extra: str = "") -> str:
    delim, names = header
    columns = "{" + ", ".join(f"{sql_str(n)}: 'VARCHAR'" for n in names) + "}"
    return (f"read_csv({sql_str(str(path))}, columns = {columns}, header = true, auto_detect = false, "
            f"delim = {sql_str(delim)}, quote = '\"', escape = '\"'{extra})")


def _ndjson_reader(path: Path, extra: str = "") -> str:
    # One VARCHAR column per line: a malformed line becomes a quarantined row with its line
    # number instead of failing (or silently skipping, with ignore_errors) the whole file.
    # chr(1) cannot appear unescaped in valid JSON, so no valid line is ever split.
    return (f"read_csv({sql_str(str(path))}, columns = {{'line': 'VARCHAR'}}, delim = chr(1), quote = '', "
            f"escape = '', header = false, auto_detect = false{extra})")


_EVENT_ONLY = frozenset(EVENT_COLUMNS) - frozenset(CUSTOMER_COLUMNS) - {"event_id"}
_CUSTOMER_ONLY = frozenset(CUSTOMER_COLUMNS) - frozenset(EVENT_COLUMNS)


def classify(columns: Iterable[str], sparse: bool = False) -> str | None:
    """``"events"``, ``"customers"`` or None (unrecognised or ambiguous).

    A file is recognised by its columns: all of EVENT_SIGNATURE, or all of
    CUSTOMER_SIGNATURE.  ``sparse`` (NDJSON, where writers leave out empty fields, so a
    missing key is a missing value): any column only one kind has, and none of the other's.
    """
    names = set(columns)
    if sparse:
        is_events, is_customers = bool(names & _EVENT_ONLY), bool(names & _CUSTOMER_ONLY)
    else:
        is_events, is_customers = EVENT_SIGNATURE <= names, CUSTOMER_SIGNATURE <= names
    if is_events and not is_customers:
        return "events"
    if is_customers and not is_events:
        return "customers"
    return None


def inspect_file(con: duckdb.DuckDBPyConnection, path: Path, fmt: str, name: str) -> FileShape:
    """Read a file's columns (not its rows) and recognise it; IngestError if we cannot."""
    try:
        if fmt == "parquet":
            described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_str(str(path))})").fetchall()
            found = [(str(r[0]), str(r[1])) for r in described]
        elif fmt == "csv":
            found = [(n, "VARCHAR") for n in csv_header(path)[1]]
        else:
            with path.open("rb") as fh:
                head = fh.read(4096).lstrip()
            if head.startswith(b"["):
                raise IngestError(f"{name}: a JSON array; write one JSON object per line (NDJSON) instead",
                                  source_file=name)
            keys = con.execute(
                f"""SELECT DISTINCT unnest(json_keys(line)) FROM (
                        SELECT line FROM {_ndjson_reader(path, ", ignore_errors = true")}
                        WHERE try(json_type(line)) = 'OBJECT' LIMIT 1000)"""
            ).fetchall()
            found = [(str(k[0]), "VARCHAR") for k in sorted(keys)]
    except IngestError:
        raise
    except csv.Error as exc:
        raise IngestError(f"{name}: cannot read the CSV header: {exc}", source_file=name) from exc
    except duckdb.Error as exc:
        raise IngestError(f"{name}: cannot read as {fmt}: {_first_line(exc)}", source_file=name) from exc
    columns: dict[str, tuple[str, str]] = {}
    for original, duck_type in found:
        key = original.strip().lower()
        if key in columns and fmt != "ndjson":
            raise IngestError(f"{name}: column {key!r} appears twice (columns found: "
                              f"{', '.join(o for o, _ in found)})", source_file=name)
        columns.setdefault(key, (original, duck_type))
    kind = classify(columns, sparse=fmt == "ndjson")
    if kind is None:
        shown = ", ".join(o for o, _ in found[:30]) or "(none)"
        raise IngestError(
            f"{name}: not recognised as events (needs {', '.join(sorted(EVENT_SIGNATURE))}) or customers "
            f"(needs {', '.join(sorted(CUSTOMER_SIGNATURE))}); columns found: {shown}", source_file=name)
    if fmt == "ndjson":  # every contract field is extracted from every line (missing → NULL)
        wanted = EVENT_COLUMNS if kind == "events" else CUSTOMER_COLUMNS
        columns = {c: (c, "VARCHAR") for c in wanted}
    return FileShape(fmt, kind, columns)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------------------
# Parsing expressions (SQL builders; pure functions of the file shape)
# --------------------------------------------------------------------------------------
def _text(shape: FileShape, name: str) -> str:
    """A column's value for checks: trimmed text (NULL when blank) or, typed, the value itself.

    Typed Parquet columns are not cast to text for every row (that cost more than all the
    checks together); reasons cast the few bad values they quote.  Identifier columns
    (ids, types, currency) are always text.
    """
    if not shape.has(name):
        return "CAST(NULL AS VARCHAR)"
    ref = shape.ref(name)
    duck_type = shape.type_of(name)
    if duck_type == "VARCHAR":
        # Parquet strings are machine-written and taken as they are; text formats are trimmed,
        # but only where needed: trim() on every value of every column cost more than all the
        # checks together.  Numbers and JSON need no trim (TRY_CAST and json_valid skip spaces).
        if shape.fmt == "parquet" or name in _UNTRIMMED:
            return f"NULLIF({ref}, '')"
        return (f"CASE WHEN starts_with({ref}, ' ') OR ends_with({ref}, ' ') "
                f"THEN NULLIF(trim({ref}), '') ELSE NULLIF({ref}, '') END")
    if name in _TYPED_OK and duck_type in _TYPED_OK[name]:
        return ref
    return f"NULLIF(trim(CAST({ref} AS VARCHAR)), '')"


_UNTRIMMED = frozenset({"quantity", "duration_saved_s", "amount_saved", "hourly_rate", "properties"})
_NUMERIC = _INTEGER_TYPES + _FLOAT_TYPES + ("DECIMAL",)
# Columns whose typed Parquet values are parsed from the typed value, not from text.
_TYPED_OK: Mapping[str, tuple[str, ...]] = {
    "occurred_at": _TIMESTAMP_TYPES, "signed_up_at": _TIMESTAMP_TYPES,
    "quantity": _NUMERIC, "duration_saved_s": _NUMERIC, "amount_saved": _NUMERIC, "hourly_rate": _NUMERIC,
}


def _as_text(expr: str) -> str:
    return f"CAST({expr} AS VARCHAR)"


def _timestamp(shape: FileShape, name: str, text_col: str) -> str:
    """UTC TIMESTAMP from a column: ISO 8601 text (offsets converted, naive = UTC) or a typed value."""
    duck_type = shape.type_of(name)
    if duck_type == "TIMESTAMP WITH TIME ZONE":
        return f"make_timestamp(epoch_us({shape.ref(name)}))"
    if duck_type in _TIMESTAMP_TYPES:
        return f"CAST({shape.ref(name)} AS TIMESTAMP)"
    # TIMESTAMPTZ parses offsets (and reads naive text in the session zone, UTC); epoch_us then
    # gives the UTC instant without ICU's slower TIMESTAMPTZ → TIMESTAMP cast.  The text must
    # start with a digit: DuckDB also accepts 'epoch', 'infinity', … which are not ISO 8601.
    return (f"CASE WHEN ascii({text_col}) BETWEEN 48 AND 57 "
            f"THEN make_timestamp(epoch_us(TRY_CAST({text_col} AS TIMESTAMPTZ))) END")


def _double(shape: FileShape, name: str, text_col: str) -> str:
    duck_type = shape.type_of(name)
    if duck_type in _INTEGER_TYPES or duck_type in _FLOAT_TYPES or duck_type == "DECIMAL":
        return f"CAST({shape.ref(name)} AS DOUBLE)"
    return f"TRY_CAST({text_col} AS DOUBLE)"


def _bigint(shape: FileShape, name: str, text_col: str, double_col: str) -> str:
    """The whole number, NULL when not a whole number (checked against the DOUBLE value)."""
    duck_type = shape.type_of(name)
    if duck_type in _INTEGER_TYPES:
        return f"TRY_CAST({shape.ref(name)} AS BIGINT)"
    source = shape.ref(name) if (duck_type in _FLOAT_TYPES or duck_type == "DECIMAL") else text_col
    # TRY_CAST('1.5' AS BIGINT) rounds to 2, hence the comparison with the DOUBLE value.
    return (f"CASE WHEN isfinite({double_col}) AND {double_col} = trunc({double_col}) "
            f"THEN TRY_CAST({source} AS BIGINT) END")


def _decimal(shape: FileShape, name: str, text_col: str) -> str:
    duck_type = shape.type_of(name)
    if duck_type in _INTEGER_TYPES or duck_type in _FLOAT_TYPES or duck_type == "DECIMAL":
        return f"TRY_CAST({shape.ref(name)} AS DECIMAL(18, 4))"
    return f"TRY_CAST({text_col} AS DECIMAL(18, 4))"


def _json_text(shape: FileShape, name: str) -> str:
    if not shape.has(name):
        return "CAST(NULL AS VARCHAR)"
    duck_type = shape.type_of(name)
    if duck_type == "VARCHAR":
        return _text(shape, name)
    return f"CAST(to_json({shape.ref(name)}) AS VARCHAR)"


def _source_query(shape: FileShape, path: Path) -> str:
    """``SELECT _rn, <raw columns> FROM <reader>`` in file order (1-based data row numbers).

    CSV / NDJSON rows are numbered by ``row_number() OVER ()``, an order-preserving streaming
    window (``preserve_insertion_order`` is on for the session).  It runs the staging query
    on one thread; materialising the parse first with a parallel ``CREATE TABLE AS`` and
    numbering by ``rowid`` was measured too: 30% more CPU for the same wall time on two
    cores.  Lines the CSV reader rejects are not numbered here: they land in the rejects
    table, and :func:`_stage_rejects` quarantines them and shifts the numbers after them.
    """
    if shape.fmt == "parquet":
        return (f"SELECT file_row_number + 1 AS _rn, * EXCLUDE (file_row_number) "
                f"FROM read_parquet({sql_str(str(path))}, file_row_number = true)")
    extra = f", store_rejects = true, rejects_table = '{_REJECTS}', rejects_scan = '{_REJECT_SCANS}'"
    if shape.fmt == "csv":
        return f"SELECT row_number() OVER () AS _rn, * FROM {_csv_reader(path, csv_header(path), extra)}"
    struct = "{" + ", ".join(f'"{c}": "VARCHAR"' for c in shape.columns) + "}"
    # Blank lines keep their number (they are rows of the line reader) but are not data rows.
    return (f"""SELECT _rn, line, CASE WHEN _jt = 'OBJECT' THEN from_json(line, {sql_str(struct)}) END AS _j, _jt
                FROM (SELECT _rn, line, try(json_type(line)) AS _jt FROM (
                        SELECT row_number() OVER () AS _rn, line FROM {_ndjson_reader(path, extra)})
                      WHERE line IS NOT NULL AND trim(line) <> '')""")


def _raw_json(shape: FileShape) -> str:
    """The input row as JSON text (used for bad rows only)."""
    if shape.fmt == "ndjson":
        return "CASE WHEN _jt IS NOT NULL THEN line ELSE to_json({'line': line})::VARCHAR END"
    fields = ", ".join(f"{sql_ident(orig)} := {sql_ident(orig)}" for orig, _ in shape.columns.values())
    return f"CAST(to_json(struct_pack({fields})) AS VARCHAR)"


def _row_checks(shape: FileShape) -> list[tuple[str, str]]:
    """Whole-row checks that apply before any field check."""
    if shape.fmt == "ndjson":
        return [("row:invalid_json", "_jt IS NULL"), ("row:not_object", "_jt <> 'OBJECT'")]
    return []


def _id_check(t: Mapping[str, str]) -> tuple[str, str]:
    """The one valid-id rule (valuemail.ids), so no stored id can later fail links or file names."""
    return "customer_id:invalid", id_invalid_sql(t['customer_id'])


def _id_reason(t: Mapping[str, str]) -> str:
    return f"'customer id ' || {_quote_value(t['customer_id'])} || ' ' || {id_problem_sql(t['customer_id'])}"


def _ts_literal(value: datetime) -> str:
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"


def _too_early_reason(column: str, settings: IngestSettings) -> str:
    """SQL for the reason of a timestamp before ``ingest.earliest_timestamp`` (e.g. 0001-01-01, 1677)."""
    floor = _floor_text(settings.earliest_timestamp)
    return f"'{column} ' || strftime(_p_ts, '%Y-%m-%dT%H:%M:%SZ') || ' is before {floor} (ingest.earliest_timestamp)'"


ROW_REASONS = {
    "row:invalid_json": "'row is not valid JSON'",
    "row:not_object": "'row is not a JSON object'",
}


def event_stage_sql(shape: FileShape, path: Path, table: str, settings: IngestSettings) -> str:
    """``INSERT INTO`` the file's staging table: every row of one events file, parsed and checked."""
    t = {c: f"_t_{c}" for c in EVENT_COLUMNS}
    text_cols = ",\n".join(f"{_text(shape, c) if c != 'properties' else _json_text(shape, 'properties')} AS {t[c]}"
                           for c in EVENT_COLUMNS)
    known = ", ".join(sql_str(e) for e in settings.known_event_types) or "NULL"
    parsed = f"""
        {_timestamp(shape, 'occurred_at', t['occurred_at'])} AS _p_ts,
        {_double(shape, 'quantity', t['quantity'])} AS _p_qd,
        {_double(shape, 'duration_saved_s', t['duration_saved_s'])} AS _p_dur,
        {_decimal(shape, 'amount_saved', t['amount_saved'])} AS _p_amt,
        upper({t['currency']}) AS _p_cur,
        {t['event_type']} IN ({known}) AS _p_known"""
    qty = _bigint(shape, "quantity", t["quantity"], "_p_qd")
    checks = _row_checks(shape) + [
        ("customer_id:missing", f"{t['customer_id']} IS NULL"),
        _id_check(t),
        ("occurred_at:missing", f"{t['occurred_at']} IS NULL AND _p_ts IS NULL"),
        ("event_type:missing", f"{t['event_type']} IS NULL"),
        ("occurred_at:unparseable", "_p_ts IS NULL OR NOT isfinite(_p_ts)"),
        ("occurred_at:too_early", f"_p_ts < {_ts_literal(settings.earliest_timestamp)}"),
        ("occurred_at:future", "_p_ts > $cutoff"),
        ("quantity:not_integer", f"{t['quantity']} IS NOT NULL AND _p_qty IS NULL"),
        ("quantity:negative", "_p_qty < 0"),
        ("duration_saved_s:not_number", f"{t['duration_saved_s']} IS NOT NULL AND (_p_dur IS NULL OR NOT isfinite(_p_dur))"),
        ("duration_saved_s:negative", "_p_dur < 0"),
        ("amount_saved:not_number", f"{t['amount_saved']} IS NOT NULL AND _p_amt IS NULL"),
        ("amount_saved:negative", "_p_amt < 0"),
        ("currency:missing", "_p_amt IS NOT NULL AND _p_cur IS NULL"),
        ("currency:invalid", "_p_cur IS NOT NULL AND NOT regexp_full_match(_p_cur, '[A-Z]{3}')"),
        ("properties:invalid_json", f"{t['properties']} IS NOT NULL AND NOT json_valid({t['properties']})"),
        ("event_type:unknown", "NOT _p_known"),
    ]
    code = "CASE " + " ".join(f"WHEN {cond} THEN {sql_str(c)}" for c, cond in checks) + " END"
    tol = f"{settings.future_tolerance_hours:g}"
    reasons = {
        **ROW_REASONS,
        "customer_id:missing": "'missing required field customer_id'",
        "customer_id:invalid": _id_reason(t),
        "occurred_at:missing": "'missing required field occurred_at'",
        "event_type:missing": "'missing required field event_type'",
        "occurred_at:unparseable": f"'unparseable timestamp ' || {_quote_value(t['occurred_at'])} || ' in occurred_at (expected ISO 8601, e.g. 2026-11-16T09:30:00Z)'",
        "occurred_at:too_early": _too_early_reason("occurred_at", settings),
        "occurred_at:future": f"'occurred_at ' || strftime(_p_ts, '%Y-%m-%dT%H:%M:%SZ') || ' is more than {tol} h in the future (ingest.future_tolerance_hours)'",
        "quantity:not_integer": f"'quantity ' || {_quote_value(t['quantity'])} || ' is not a whole number'",
        "quantity:negative": "'negative quantity ' || CAST(_p_qty AS VARCHAR) || ' (must be >= 0)'",
        "duration_saved_s:not_number": f"'duration_saved_s ' || {_quote_value(t['duration_saved_s'])} || ' is not a number'",
        "duration_saved_s:negative": f"'negative value ' || {_as_text(t['duration_saved_s'])} || ' in duration_saved_s (must be >= 0)'",
        "amount_saved:not_number": f"'amount_saved ' || {_quote_value(t['amount_saved'])} || ' is not a number'",
        "amount_saved:negative": f"'negative value ' || {_as_text(t['amount_saved'])} || ' in amount_saved (must be >= 0)'",
        "currency:missing": f"'amount_saved ' || {_as_text(t['amount_saved'])} || ' requires currency (a 3-letter ISO 4217 code)'",
        "currency:invalid": f"'currency ' || {_quote_value(t['currency'])} || ' is not a 3-letter ISO 4217 code'",
        "properties:invalid_json": "'properties is not valid JSON: ' || " + _quote_value(t["properties"]),
        "event_type:unknown": f"'unknown event type ' || {_quote_value(t['event_type'])} || ' (not in value model {settings.value_model_version}): kept with known_type = false, not valued'",
    }
    reason = "CASE _code " + " ".join(f"WHEN {sql_str(c)} THEN {r}" for c, r in reasons.items()) + " END"
    canonical = (f"concat_ws({_HASH_SEP}, {t['customer_id']}, strftime(_p_ts, '%Y-%m-%dT%H:%M:%S.%fZ'), "
                 f"{t['event_type']}, CAST(_p_qty AS VARCHAR), coalesce(CAST(_p_dur AS VARCHAR), ''), "
                 f"coalesce(CAST(_p_amt AS VARCHAR), ''), coalesce(_p_cur, ''), coalesce({t['properties']}, ''))")
    good = "(_code IS NULL OR _code = 'event_type:unknown')"
    return f"""
INSERT INTO {table} (file_idx, rn, event_id, customer_id, occurred_at, event_type, quantity,
                     duration_saved_s, amount_saved, currency, properties, known_type, code, reason, raw)
SELECT 0, _rn,
       CASE WHEN {good} THEN coalesce({t['event_id']}, md5({canonical})) END,
       {t['customer_id']}, _p_ts, {t['event_type']}, _p_qty, _p_dur, _p_amt, _p_cur,
       {t['properties']}, _p_known, _code,
       CASE WHEN _code IS NOT NULL THEN {reason} END,
       CASE WHEN _code IS NOT NULL THEN {_raw_json(shape)} END
FROM (SELECT *, {code} AS _code
      FROM (SELECT *, coalesce({qty}, CASE WHEN {t['quantity']} IS NULL THEN 1 END) AS _p_qty
            FROM (SELECT *, {parsed}
                  FROM (SELECT *, {text_cols} FROM ({_source_query(shape, path)})))))
"""


def customer_stage_sql(shape: FileShape, path: Path, table: str, settings: IngestSettings) -> str:
    """``INSERT INTO`` the file's staging table: every row of one customers file, parsed and checked."""
    t = {c: f"_t_{c}" for c in CUSTOMER_COLUMNS}
    text_cols = ",\n".join(f"{_text(shape, c)} AS {t[c]}" for c in CUSTOMER_COLUMNS)
    email_re = (r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
    parsed = f"""
        {_timestamp(shape, 'signed_up_at', t['signed_up_at'])} AS _p_ts,
        {_decimal(shape, 'hourly_rate', t['hourly_rate'])} AS _p_rate,
        upper({t['currency']}) AS _p_cur,
        {t['timezone']} IN (SELECT name FROM pg_timezone_names()) AS _p_tz_ok"""
    checks = _row_checks(shape) + [
        ("customer_id:missing", f"{t['customer_id']} IS NULL"),
        _id_check(t),
        ("signed_up_at:missing", f"{t['signed_up_at']} IS NULL AND _p_ts IS NULL"),
        ("signed_up_at:unparseable", "_p_ts IS NULL OR NOT isfinite(_p_ts)"),
        ("signed_up_at:too_early", f"_p_ts < {_ts_literal(settings.earliest_timestamp)}"),
        ("signed_up_at:future", "_p_ts > $cutoff"),
        ("locale:missing", f"{t['locale']} IS NULL"),
        ("locale:invalid", f"NOT regexp_full_match({t['locale']}, '[A-Za-z]{{2,3}}([_-][A-Za-z0-9]{{2,8}})*')"),
        ("email:missing", f"{t['email']} IS NULL"),
        ("email:invalid", f"NOT regexp_full_match({t['email']}, {sql_str(email_re)})"),
        # A column the file does not have is no claim about the value: a stored one is kept
        # (see _flush_customers), a new customer gets the default without a flag.
        ("timezone:missing", f"{t['timezone']} IS NULL AND {str(shape.has('timezone')).lower()}"),
        ("timezone:unknown", "NOT _p_tz_ok"),
        ("plan:missing", f"{t['plan']} IS NULL AND {str(shape.has('plan')).lower()}"),
        ("hourly_rate:not_number", f"{t['hourly_rate']} IS NOT NULL AND _p_rate IS NULL"),
        ("hourly_rate:negative", "_p_rate < 0"),
        ("currency:invalid", "_p_cur IS NOT NULL AND NOT regexp_full_match(_p_cur, '[A-Z]{3}')"),
        ("currency:assumed", "_p_rate IS NOT NULL AND _p_cur IS NULL"),
    ]
    code = "CASE " + " ".join(f"WHEN {cond} THEN {sql_str(c)}" for c, cond in checks) + " END"
    tol = f"{settings.future_tolerance_hours:g}"
    kept = "customer kept, will not be emailed (invalid_email)"
    reasons = {
        **ROW_REASONS,
        "customer_id:missing": "'missing required field customer_id'",
        "customer_id:invalid": _id_reason(t),
        "signed_up_at:missing": "'missing required field signed_up_at'",
        "signed_up_at:unparseable": f"'unparseable timestamp ' || {_quote_value(t['signed_up_at'])} || ' in signed_up_at (expected ISO 8601)'",
        "signed_up_at:too_early": _too_early_reason("signed_up_at", settings),
        "signed_up_at:future": f"'signed_up_at ' || strftime(_p_ts, '%Y-%m-%dT%H:%M:%SZ') || ' is more than {tol} h in the future'",
        "locale:missing": "'missing required field locale'",
        "locale:invalid": f"'locale ' || {_quote_value(t['locale'])} || ' is not a language tag like en or pt-BR'",
        "email:missing": f"'missing email: {kept}'",
        "email:invalid": f"'invalid email ' || {_quote_value(t['email'])} || ': {kept}'",
        "timezone:missing": f"'missing timezone: {DEFAULT_TIMEZONE} assumed'",
        "timezone:unknown": f"'unknown timezone ' || {_quote_value(t['timezone'])} || ': {DEFAULT_TIMEZONE} assumed'",
        "plan:missing": f"'missing plan: stored as {UNKNOWN_PLAN}'",
        "hourly_rate:not_number": f"'hourly_rate ' || {_quote_value(t['hourly_rate'])} || ' is not a number: dropped'",
        "hourly_rate:negative": f"'negative value ' || {_as_text(t['hourly_rate'])} || ' in hourly_rate: dropped'",
        "currency:invalid": f"'currency ' || {_quote_value(t['currency'])} || ' is not a 3-letter ISO 4217 code: dropped'",
        "currency:assumed": f"'hourly_rate has no currency: {settings.default_currency} (value_model.currency) assumed'",
    }
    reason = "CASE _code " + " ".join(f"WHEN {sql_str(c)} THEN {r}" for c, r in reasons.items()) + " END"
    rate_ok = "(_code IS NULL OR _code NOT IN ('hourly_rate:not_number', 'hourly_rate:negative'))"
    return f"""
INSERT INTO {table} (file_idx, rn, customer_id, email, name, locale, timezone, plan, country,
                     signed_up_at, company, hourly_rate, currency, code, reason, raw)
SELECT 0, _rn, {t['customer_id']}, coalesce({t['email']}, ''), {t['name']}, {t['locale']},
       CASE WHEN _p_tz_ok THEN {t['timezone']} ELSE {sql_str(DEFAULT_TIMEZONE)} END,
       coalesce({t['plan']}, {sql_str(UNKNOWN_PLAN)}), {t['country']}, _p_ts, {t['company']},
       CASE WHEN {rate_ok} THEN _p_rate END,
       CASE WHEN _code = 'currency:invalid' THEN NULL
            WHEN _code = 'currency:assumed' THEN {sql_str(settings.default_currency)}
            WHEN _p_cur IS NOT NULL AND regexp_full_match(_p_cur, '[A-Z]{{3}}') THEN _p_cur END,
       _code,
       CASE WHEN _code IS NOT NULL THEN {reason} END,
       CASE WHEN _code IS NOT NULL THEN {_raw_json(shape)} END
FROM (SELECT *, {code} AS _code
      FROM (SELECT *, {parsed}
            FROM (SELECT *, {text_cols} FROM ({_source_query(shape, path)}))))
"""


# One staging table per file (``file_idx`` is 0 there; a batch's view numbers the files).
_STAGE_COLUMNS = {
    "events": """file_idx INTEGER, rn BIGINT, event_id VARCHAR, customer_id VARCHAR, occurred_at TIMESTAMP,
    event_type VARCHAR, quantity BIGINT, duration_saved_s DOUBLE, amount_saved DECIMAL(18, 4),
    currency VARCHAR, properties VARCHAR, known_type BOOLEAN, code VARCHAR, reason VARCHAR, raw VARCHAR""",
    "customers": """file_idx INTEGER, rn BIGINT, customer_id VARCHAR, email VARCHAR, name VARCHAR, locale VARCHAR,
    timezone VARCHAR, plan VARCHAR, country VARCHAR, signed_up_at TIMESTAMP, company VARCHAR,
    hourly_rate DECIMAL(18, 4), currency VARCHAR, code VARCHAR, reason VARCHAR, raw VARCHAR""",
}


_EVENT_CONTENT = ("customer_id", "occurred_at", "event_type", "quantity", "duration_saved_s",
                  "amount_saved", "currency", "properties")
_CUSTOMER_CONTENT = ("email", "name", "locale", "timezone", "plan", "country", "signed_up_at",
                     "company", "hourly_rate", "currency")


def _same(a: str, b: str, columns: Sequence[str], cast_json: bool = False) -> str:
    parts = []
    for c in columns:
        left, right = f"{a}.{c}", f"{b}.{c}"
        if cast_json and c == "properties":
            left, right = f"CAST({left} AS VARCHAR)", f"CAST({right} AS VARCHAR)"
        parts.append(f"{left} IS NOT DISTINCT FROM {right}")
    return "(" + " AND ".join(parts) + ")"


# --------------------------------------------------------------------------------------
# Staging one file
# --------------------------------------------------------------------------------------
def _stage_file(con: duckdb.DuckDBPyConnection, shape: FileShape, path: Path, table: str,
                name: str, settings: IngestSettings, cutoff: datetime) -> int:
    """Read one file into its own staging table ``table``; returns the number of data rows read.

    A read error half-way through drops the table, so staging only ever holds whole files.
    """
    text = shape.fmt in ("csv", "ndjson")
    builder = event_stage_sql if shape.kind == "events" else customer_stage_sql
    try:
        con.execute(f"CREATE TABLE {table} ({_STAGE_COLUMNS[shape.kind]})")
        if text:
            con.execute(f"DROP TABLE IF EXISTS {_REJECTS}")
            con.execute(f"DROP TABLE IF EXISTS {_REJECT_SCANS}")
        con.execute(builder(shape, path, table, settings), {"cutoff": cutoff})
        if text:
            _stage_rejects(con, shape, table)
    except duckdb.Error as exc:
        con.execute(f"DROP TABLE IF EXISTS {table}")
        raise IngestError(f"{name}: cannot read as {shape.fmt}: {_first_line(exc)}", source_file=name) from exc
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _stage_rejects(con: duckdb.DuckDBPyConnection, shape: FileShape, table: str) -> None:
    """Lines the CSV reader rejected become 'row:malformed' staging rows; the others are renumbered.

    The reader reports a rejected line's position counting the header as line 1, so its data
    row is ``line - 1`` (CSV; NDJSON has no header).  The good rows were numbered 1, 2, …
    without the rejected ones; good row ``k`` really is row ``k + #{i : r_i - i < k}`` for the
    rejected rows ``r_1 < r_2 < …`` — an ASOF join on ``g_i = r_i - i``.
    """
    try:
        if not con.execute(f"SELECT count(*) FROM {_REJECTS}").fetchone()[0]:
            return
    except duckdb.CatalogException:  # the reader creates the table only when it rejects a line
        return
    header = 1 if shape.fmt == "csv" else 0
    # A ragged CSV line gets one reject per surplus / missing field; its reason names the counts
    # once: the most fields found (too many) or the fewest (missing).
    counts, is_ragged = "NULL", "false"
    if shape.fmt == "csv":
        found = "TRY_CAST(regexp_extract(error_message, 'Found: (\\d+)', 1) AS BIGINT)"
        counts = (f"'expected {len(shape.columns)} fields, found ' "
                  f"|| coalesce(max({found}) FILTER (WHERE error_type = 'TOO MANY COLUMNS'), "
                  f"min({found}) FILTER (WHERE error_type = 'MISSING COLUMNS'))")
        is_ragged = "error_type IN ('TOO MANY COLUMNS', 'MISSING COLUMNS')"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _vm_ingest_rejected AS
        SELECT CAST(line AS BIGINT) - {header} AS r, row_number() OVER (ORDER BY line) AS i,
               any_value(csv_line) AS csv_line,
               concat_ws('; ', {counts}, string_agg(DISTINCT error_message, '; ') FILTER (WHERE NOT ({is_ragged}))) AS message
        FROM {_REJECTS} GROUP BY line""")
    n = con.execute("SELECT count(*) FROM _vm_ingest_rejected").fetchone()[0]
    if not n:
        con.execute("DROP TABLE _vm_ingest_rejected")
        return
    con.execute(f"""
        UPDATE {table} AS t SET rn = t.rn + m.shift
        FROM (SELECT s.rn AS k, g.i AS shift
              FROM (SELECT rn FROM {table}) s
              ASOF JOIN (SELECT r - i AS g, max(i) AS i FROM _vm_ingest_rejected GROUP BY ALL) g
              ON s.rn > g.g) m
        WHERE t.rn = m.k""")
    what = "CSV" if shape.fmt == "csv" else "NDJSON"
    con.execute(f"""
        INSERT INTO {table} (file_idx, rn, code, reason, raw)
        SELECT 0, r, 'row:malformed',
               'malformed {what} row: ' || left(regexp_replace(message, '\\s+', ' ', 'g'), 300),
               CAST(to_json({{'line': csv_line}}) AS VARCHAR)
        FROM _vm_ingest_rejected ORDER BY r""")
    con.execute("DROP TABLE _vm_ingest_rejected")


# --------------------------------------------------------------------------------------
# Flushing a batch
# --------------------------------------------------------------------------------------
@dataclass
class _Staged:
    source: SourceFile
    shape: FileShape
    sha256: str
    rows: int
    started: float
    table: str  # the file's staging table


@dataclass
class _Batch:
    kind: str | None = None
    files: list[_Staged] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def _severity_sql(code: str, kind: str) -> str:
    flagged = ", ".join(sql_str(c) for c in sorted(FLAGGED[kind]))
    return f"CASE WHEN {code} IN ({flagged}) THEN 'flagged' ELSE 'rejected' END"


def _field_sql(code: str) -> str:
    return f"NULLIF(split_part({code}, ':', 1), 'row')"


def _register_files(con: duckdb.DuckDBPyConnection, batch: _Batch) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_FILES} (file_idx INTEGER, source_file VARCHAR)")
    con.executemany(f"INSERT INTO {_FILES} VALUES (?, ?)",
                    [(i, f.source.name) for i, f in enumerate(batch.files)])


def _flush_events(con: duckdb.DuckDBPyConnection, batch: _Batch, now: datetime) -> dict[int, dict[str, int]]:
    """Deduplicate, insert and quarantine the staged events; returns counts per file_idx."""
    _register_files(con, batch)
    good = "(code IS NULL OR code = 'event_type:unknown')"
    # Ids appearing more than once in the batch, and ids already stored.  The IN (subquery)
    # builds its hash table on the batch and probes events.event_id only (with a Bloom
    # filter pushed into the scan), so the stored table is read once per batch.
    stored_probe = ""
    if con.execute("SELECT count(*) > 0 FROM (SELECT 1 FROM events LIMIT 1)").fetchone()[0]:
        stored_probe = f"""UNION
        SELECT DISTINCT event_id FROM events WHERE event_id IN (SELECT event_id FROM {_STAGE} WHERE {good})"""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _vm_ingest_ids AS
        SELECT event_id FROM {_STAGE} WHERE {good} GROUP BY event_id HAVING count(*) > 1
        {stored_probe}""")
    conflicts = con.execute("SELECT count(*) FROM _vm_ingest_ids").fetchone()[0]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_FATE} (file_idx INTEGER, rn BIGINT, fate VARCHAR, reason VARCHAR, raw VARCHAR)")
    if conflicts:
        content = ", ".join(_EVENT_CONTENT)
        con.execute(f"""
        INSERT INTO {_FATE}
        WITH cand AS (
            SELECT s.file_idx, s.rn, s.event_id, {", ".join("s." + c for c in _EVENT_CONTENT)},
                   row_number() OVER (PARTITION BY s.event_id ORDER BY s.file_idx, s.rn) AS occ
            FROM {_STAGE} s SEMI JOIN _vm_ingest_ids USING (event_id)
            WHERE {good.replace('code', 's.code')}),
        firsts AS (SELECT * FROM cand WHERE occ = 1),
        stored AS (
            SELECT event_id, {content}, source_file,
                   row_number() OVER (PARTITION BY event_id ORDER BY ingested_at, source_file) AS k
            FROM events SEMI JOIN _vm_ingest_ids USING (event_id)
            QUALIFY k = 1)
        SELECT c.file_idx, c.rn,
               CASE WHEN st.event_id IS NOT NULL THEN
                        CASE WHEN {_same('c', 'st', _EVENT_CONTENT, cast_json=True)} THEN 'unchanged' ELSE 'conflict' END
                    WHEN c.occ > 1 THEN
                        CASE WHEN {_same('c', 'f', _EVENT_CONTENT)} THEN 'unchanged' ELSE 'conflict' END
               END AS fate,
               CASE WHEN st.event_id IS NOT NULL
                    THEN 'event_id ' || {_quote_value('c.event_id')} || ' is already stored with different content (from '
                         || st.source_file || ')'
                    ELSE 'duplicate event_id ' || {_quote_value('c.event_id')} || ' with different content (first seen at row '
                         || f.rn || CASE WHEN f.file_idx <> c.file_idx THEN ' of ' || ff.source_file ELSE '' END || ')'
               END AS reason,
               CAST(to_json(struct_pack(event_id := c.event_id, {", ".join(f"{x} := c.{x}" for x in _EVENT_CONTENT)})) AS VARCHAR) AS raw
        FROM cand c
        LEFT JOIN stored st USING (event_id)
        LEFT JOIN firsts f USING (event_id)
        LEFT JOIN {_FILES} ff ON ff.file_idx = f.file_idx
        WHERE st.event_id IS NOT NULL OR c.occ > 1
        """)
    # One INSERT for the whole batch (DuckDB parallelises one large insert better than
    # several small ones); source_file comes from a list indexed by file_idx.
    where = good.replace("code", "s.code")
    if conflicts:
        where += f" AND NOT EXISTS (SELECT 1 FROM {_FATE} x WHERE x.file_idx = s.file_idx AND x.rn = s.rn)"
    con.execute(f"""
        INSERT INTO events (event_id, customer_id, occurred_at, event_type, quantity, duration_saved_s,
                            amount_saved, currency, properties, known_type, source_file, ingested_at)
        SELECT event_id, customer_id, occurred_at, event_type, quantity, duration_saved_s, amount_saved,
               currency, properties, known_type, list_extract($sources, file_idx + 1), $now
        FROM {_STAGE} s WHERE {where}""", {"sources": [f.source.name for f in batch.files], "now": now})
    counts: dict[int, dict[str, int]] = {}
    # Rows with a fate (duplicates) are quarantined for that reason only, or not at all.
    no_fate = f"AND NOT EXISTS (SELECT 1 FROM {_FATE} x WHERE x.file_idx = s.file_idx AND x.rn = s.rn)" if conflicts else ""
    con.execute(f"""
        INSERT INTO quarantine (source_file, row_number, kind, field, reason, severity, raw, ingested_at)
        SELECT f.source_file, q.rn, 'events', q.field, q.reason, q.severity, q.raw, $now
        FROM (SELECT file_idx, rn, {_field_sql('code')} AS field, reason, {_severity_sql('code', 'events')} AS severity, raw
              FROM {_STAGE} s WHERE code IS NOT NULL {no_fate}
              UNION ALL
              SELECT file_idx, rn, 'event_id', reason, 'rejected', raw FROM {_FATE} WHERE fate = 'conflict') q
        JOIN {_FILES} f USING (file_idx)
        ORDER BY q.file_idx, q.rn""", {"now": now})
    flagged_code = "s.code = 'event_type:unknown'"
    if conflicts:
        tallies = con.execute(f"""
            SELECT s.file_idx,
                   count(*) FILTER (WHERE (s.code IS NOT NULL AND NOT {flagged_code}) OR x.fate = 'conflict'),
                   count(*) FILTER (WHERE {flagged_code} AND x.fate IS NULL),
                   count(*) FILTER (WHERE x.fate = 'unchanged')
            FROM {_STAGE} s LEFT JOIN {_FATE} x USING (file_idx, rn) GROUP BY ALL""").fetchall()
    else:
        tallies = con.execute(f"""
            SELECT s.file_idx, count(*) FILTER (WHERE s.code IS NOT NULL AND NOT {flagged_code}),
                   count(*) FILTER (WHERE {flagged_code}), 0
            FROM {_STAGE} s GROUP BY ALL""").fetchall()
    for file_idx, rejected, flagged, unchanged in tallies:
        rows = batch.files[file_idx].rows
        counts[file_idx] = {"loaded": rows - int(rejected) - int(unchanged), "rejected": int(rejected),
                            "flagged": int(flagged), "unchanged": int(unchanged)}
    for file_idx in range(len(batch.files)):
        for key in ("loaded", "rejected", "flagged", "unchanged"):
            counts.setdefault(file_idx, {}).setdefault(key, 0)
    return counts


def _customer_raw(alias: str) -> str:
    """SQL for a staged customer row as JSON: the input row when kept, else the parsed values."""
    fields = ", ".join(f"{x} := {alias}.{x}" for x in _CUSTOMER_CONTENT)
    return f"coalesce({alias}.raw, CAST(to_json(struct_pack(customer_id := {alias}.customer_id, {fields})) AS VARCHAR))"


def _flush_customers(con: duckdb.DuckDBPyConnection, batch: _Batch, now: datetime) -> dict[int, dict[str, int]]:
    """Upsert the staged customers (one file); within a file the last row of an id wins."""
    _register_files(con, batch)
    good = "(code IS NULL OR code IN (" + ", ".join(sql_str(c) for c in sorted(FLAGGED["customers"])) + "))"
    content = ", ".join(_CUSTOMER_CONTENT)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _vm_ingest_cust AS
        SELECT *, row_number() OVER (PARTITION BY file_idx, customer_id ORDER BY rn DESC) AS from_end,
               first_value(rn) OVER (PARTITION BY file_idx, customer_id ORDER BY rn DESC) AS winner_rn
        FROM {_STAGE} WHERE {good}""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {_FATE} AS
        SELECT c.file_idx, c.rn,
               CASE WHEN {_same('c', 'w', _CUSTOMER_CONTENT)} THEN 'unchanged' ELSE 'conflict' END AS fate,
               'customer_id ' || {_quote_value('c.customer_id')} || ' appears again at row ' || c.winner_rn
                   || ' of this file; the later row wins' AS reason,
               {_customer_raw('c')} AS raw
        FROM _vm_ingest_cust c JOIN _vm_ingest_cust w
          ON w.file_idx = c.file_idx AND w.customer_id = c.customer_id AND w.from_end = 1
        WHERE c.from_end > 1""")
    # An update must not erase a stored email: that row is rejected as a whole.
    con.execute(f"""
        INSERT INTO {_FATE}
        SELECT w.file_idx, w.rn, 'blanked',
               'email is empty but customer ' || {_quote_value('w.customer_id')}
                   || ' has a stored email: update not applied',
               {_customer_raw('w')}
        FROM _vm_ingest_cust w JOIN customers k USING (customer_id)
        WHERE w.from_end = 1 AND w.email = '' AND k.email <> ''""")
    counts: dict[int, dict[str, int]] = {}
    for file_idx, staged in enumerate(batch.files):
        # Columns the file does not have keep their stored values (new customers get the defaults).
        present = [c for c in _CUSTOMER_CONTENT if staged.shape.has(c)]
        winners = (f"file_idx = {file_idx} AND from_end = 1 AND rn NOT IN "
                   f"(SELECT rn FROM {_FATE} WHERE file_idx = {file_idx} AND fate = 'blanked')")
        new, changed, same = con.execute(f"""
            SELECT count(*) FILTER (WHERE k.customer_id IS NULL),
                   count(*) FILTER (WHERE k.customer_id IS NOT NULL AND NOT {_same('w', 'k', present)}),
                   count(*) FILTER (WHERE k.customer_id IS NOT NULL AND {_same('w', 'k', present)})
            FROM (SELECT * FROM _vm_ingest_cust WHERE {winners}) w LEFT JOIN customers k USING (customer_id)
            """).fetchone()
        updates = ", ".join(f"{c} = excluded.{c}" for c in present)
        differs = " OR ".join(f"customers.{c} IS DISTINCT FROM excluded.{c}" for c in present)
        con.execute(f"""
            INSERT INTO customers (customer_id, {content}, source_file, updated_at)
            SELECT customer_id, {content}, $source, $now FROM _vm_ingest_cust
            WHERE {winners} ORDER BY rn
            ON CONFLICT (customer_id) DO UPDATE SET {updates}, source_file = excluded.source_file,
                updated_at = excluded.updated_at
            WHERE {differs}""", {"source": staged.source.name, "now": now})
        counts[file_idx] = {"loaded": int(new) + int(changed), "unchanged": int(same)}
    con.execute(f"""
        INSERT INTO quarantine (source_file, row_number, kind, field, reason, severity, raw, ingested_at)
        SELECT f.source_file, q.rn, 'customers', q.field, q.reason, q.severity, q.raw, $now
        FROM (SELECT file_idx, rn, {_field_sql('code')} AS field, reason, {_severity_sql('code', 'customers')} AS severity, raw
              FROM {_STAGE} s WHERE code IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM {_FATE} x WHERE x.file_idx = s.file_idx AND x.rn = s.rn)
              UNION ALL
              SELECT file_idx, rn, CASE fate WHEN 'blanked' THEN 'email' ELSE 'customer_id' END, reason, 'rejected', raw
              FROM {_FATE} WHERE fate IN ('conflict', 'blanked')) q
        JOIN {_FILES} f USING (file_idx)
        ORDER BY q.file_idx, q.rn""", {"now": now})
    for file_idx, rejected, flagged in con.execute(f"""
            SELECT s.file_idx,
                   count(*) FILTER (WHERE (s.code IS NOT NULL AND {_severity_sql('s.code', 'customers')} = 'rejected')
                                          OR x.fate IN ('conflict', 'blanked')),
                   count(*) FILTER (WHERE s.code IS NOT NULL AND {_severity_sql('s.code', 'customers')} = 'flagged'
                                          AND x.fate IS NULL)
            FROM {_STAGE} s LEFT JOIN {_FATE} x USING (file_idx, rn) GROUP BY ALL""").fetchall():
        counts[file_idx].update(rejected=int(rejected), flagged=int(flagged))
    for file_idx, unchanged in con.execute(
            f"SELECT file_idx, count(*) FROM {_FATE} WHERE fate = 'unchanged' GROUP BY ALL").fetchall():
        counts[file_idx]["unchanged"] += int(unchanged)
    con.execute("DROP TABLE _vm_ingest_cust")
    for file_idx in range(len(batch.files)):
        counts.setdefault(file_idx, {"loaded": 0, "unchanged": 0})
        counts[file_idx].setdefault("rejected", 0)
        counts[file_idx].setdefault("flagged", 0)
    return counts


def _flush(con: duckdb.DuckDBPyConnection, batch: _Batch, now: datetime, progress: Progress) -> list[FileResult]:
    """Commit one batch of staged files (one transaction) and describe each file."""
    if not batch.files:
        return []
    flush = _flush_events if batch.kind == "events" else _flush_customers
    # The batch's files as one relation, numbered 0, 1, … in batch order.
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_STAGE} AS " + " UNION ALL ".join(
        f"SELECT * REPLACE ({i} AS file_idx) FROM {f.table}" for i, f in enumerate(batch.files)))
    with transaction(con):
        counts = flush(con, batch, now)
        con.executemany(
            "INSERT INTO ingested_files (sha256, source_file, kind, rows_read, rows_loaded, rows_quarantined, ingested_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(f.sha256, f.source.name, batch.kind, f.rows, counts[i]["loaded"],
              counts[i]["rejected"] + counts[i]["flagged"], now) for i, f in enumerate(batch.files)])
    finished = time.perf_counter()
    results = []
    for i, f in enumerate(batch.files):
        c = counts[i]
        result = FileResult(
            source_file=f.source.name, status="loaded", kind=batch.kind or "", fmt=f.shape.fmt, sha256=f.sha256,
            rows_read=f.rows, rows_loaded=c["loaded"], rows_rejected=c["rejected"], rows_flagged=c["flagged"],
            rows_unchanged=c["unchanged"], seconds=finished - f.started)
        results.append(result)
        _say(progress, result.describe())
    con.execute(f"DROP VIEW {_STAGE}")
    for f in batch.files:
        con.execute(f"DROP TABLE {f.table}")
    batch.files.clear()
    batch.kind = None
    return results


# --------------------------------------------------------------------------------------
# Session settings
# --------------------------------------------------------------------------------------
def _parse_bytes(text: str) -> float | None:
    units = {"B": 1, "KB": 1e3, "KIB": 1024, "MB": 1e6, "MIB": 1024**2, "GB": 1e9, "GIB": 1024**3,
             "TB": 1e12, "TIB": 1024**4}
    cleaned = text.strip().upper().replace(" ", "")
    for unit in sorted(units, key=len, reverse=True):
        if cleaned.endswith(unit):
            try:
                return float(cleaned[: -len(unit)]) * units[unit]
            except ValueError:
                return None
    return None


@contextmanager
def _session(con: duckdb.DuckDBPyConnection, settings: IngestSettings) -> Iterator[None]:
    """UTC session time zone, file-order scans, bounded memory — restored afterwards."""
    names = ("TimeZone", "preserve_insertion_order", "memory_limit", "enable_progress_bar")
    saved = dict(zip(names, con.execute(
        "SELECT " + ", ".join(f"current_setting({sql_str(n)})" for n in names)).fetchone()))
    for statement in _SESSION_SETTINGS:  # progress goes through `progress`, not stderr bars
        con.execute(statement)
    if settings.memory_limit:
        wanted, current = _parse_bytes(settings.memory_limit), _parse_bytes(str(saved.get("memory_limit", "")))
        if wanted and (current is None or wanted < current):
            con.execute(f"SET memory_limit = {sql_str(settings.memory_limit)}")
    try:
        yield
    finally:
        for name in names:
            value = saved[name]
            con.execute(f"SET {name} = {str(value).lower() if isinstance(value, bool) else sql_str(value)}")
        con.execute(f"DROP VIEW IF EXISTS {_STAGE}")
        for table in (_FILES, _FATE, _REJECTS, _REJECT_SCANS, "_vm_ingest_ids", "_vm_ingest_rejected", "_vm_ingest_cust"):
            con.execute(f"DROP TABLE IF EXISTS {table}")


_SESSION_SETTINGS = ("SET TimeZone = 'UTC'", "SET preserve_insertion_order = true", "SET enable_progress_bar = false")
_RUN_NUMBERS = itertools.count(1)


class _Readers:
    """Reads files into staging tables on ``readers`` worker connections, several files at once.

    Each file gets its own table in an in-memory database attached for the run, so the next
    files are read while the main connection flushes the previous batch, and text files —
    whose row numbering is an ordered, single-threaded scan — are parsed side by side, one
    per core.  :meth:`submit` returns a future; the caller takes results in file order.
    Leaving the context waits for reads in flight and detaches the database, dropping every
    staging table not flushed.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, settings: IngestSettings, cutoff: datetime) -> None:
        self.db = f"_vm_ingest_mem_{os.getpid()}_{next(_RUN_NUMBERS)}"
        self.count = settings.readers
        self._con, self._settings, self._cutoff = con, settings, cutoff
        self._tables = itertools.count()
        self._idle: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> "_Readers":
        self._con.execute(f"ATTACH ':memory:' AS {self.db}")
        for _ in range(self.count):
            cursor = self._con.cursor()
            for statement in _SESSION_SETTINGS:
                cursor.execute(statement)
            self._cursors.append(cursor)
            self._idle.put(cursor)
        self._pool = ThreadPoolExecutor(self.count, thread_name_prefix="valuemail-ingest")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for cursor in self._cursors:
            cursor.close()
        self._con.execute(f"DETACH {self.db}")

    def submit(self, source: SourceFile, local: Callable[[], Path]) -> "Future[_Staged | FileResult]":
        """Read ``source`` (its bytes at ``local()``) into a new staging table, or skip known bytes."""
        assert self._pool is not None, "use _Readers as a context manager"
        return self._pool.submit(self._read, source, local, f"{self.db}.f{next(self._tables)}")

    def _read(self, source: SourceFile, local: Callable[[], Path], table: str) -> "_Staged | FileResult":
        started = time.perf_counter()
        cursor = self._idle.get()
        try:
            path = local()
            if _is_empty(path):
                return FileResult(source.name, "quarantined", fmt=source.fmt, note=EMPTY_FILE,
                                  seconds=time.perf_counter() - started)
            sha = sha256_file(path)
            previous = _already_ingested(cursor, sha)
            if previous:
                return FileResult(source.name, "skipped", sha256=sha, note=previous, seconds=time.perf_counter() - started)
            shape = inspect_file(cursor, path, source.fmt, source.name)
            rows = _stage_file(cursor, shape, path, table, source.name, self._settings, self._cutoff)
            return _Staged(source, shape, sha, rows, started, table)
        finally:
            self._idle.put(cursor)


def _say(progress: Progress, message: str) -> None:
    if progress is not None:
        progress(message)


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------
def ingest_paths(con: duckdb.DuckDBPyConnection, paths: Sequence[str], config: Config,
                 progress: Progress = None, now: datetime | None = None,
                 s3_client: object | None = None) -> IngestReport:
    """Ingest files, folders and s3:// prefixes into ``events`` / ``customers`` / ``quarantine``.

    ``now`` (naive UTC) is the ingest time recorded on every row and the reference for the
    future-timestamp check; tests pass it, everyone else leaves it out.  Raises
    :class:`IngestError` at the first file that cannot be read or recognised; files before
    it stay committed (``exc.partial`` reports them).
    """
    from valuemail import s3

    started = time.perf_counter()
    settings = IngestSettings.from_config(config)
    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    cutoff = now + timedelta(hours=settings.future_tolerance_hours)
    sources, ignored = discover(paths, s3_client)
    _say(progress, f"ingest: {len(sources)} file(s) to check" + (f", {len(ignored)} ignored" if ignored else ""))
    results: list[FileResult] = []
    batch = _Batch()
    seen: dict[str, str] = {}
    client = s3_client

    def report() -> IngestReport:
        return IngestReport(tuple(results), time.perf_counter() - started, tuple(ignored))

    with _session(con, settings), tempfile.TemporaryDirectory(prefix="valuemail-ingest-") as tmp, \
            _Readers(con, settings, cutoff) as readers:

        def scratch(index: int, source: SourceFile) -> Path:
            return Path(tmp) / f"{index:06d}-{source.s3_object.name}"

        def fetch(index: int, source: SourceFile) -> Callable[[], Path]:
            """Where the reader finds the file's bytes: the file itself, or an S3 object fetched then."""
            nonlocal client
            if source.local_path is not None:
                return lambda: source.local_path
            if client is None:
                client = s3.make_client()

            def download() -> Path:
                try:
                    return s3.download(source.s3_object, scratch(index, source), client)
                except s3.S3Error as exc:
                    raise IngestError(str(exc), source_file=source.name) from exc
            return download

        # Files are read `readers` at a time ahead of the one being committed; results are taken
        # in file order, so batches, skips and failures happen exactly as in a one-by-one run.
        upcoming = iter(enumerate(sources, start=1))
        in_flight: deque[tuple[int, SourceFile, Future]] = deque()

        def read_next() -> None:
            for index, source in itertools.islice(upcoming, 1):
                _say(progress, f"reading {printable(source.name)} [{index}/{len(sources)}]")
                in_flight.append((index, source, readers.submit(source, fetch(index, source))))

        for _ in range(readers.count):
            read_next()
        while in_flight:
            index, source, future = in_flight.popleft()
            try:
                item = future.result()
            except IngestError as exc:
                results += _flush(con, batch, now, progress)
                raise IngestError(str(exc), source_file=exc.source_file or source.name, partial=report()) from exc
            finally:
                if source.local_path is None:
                    scratch(index, source).unlink(missing_ok=True)
            read_next()
            if isinstance(item, FileResult):  # bytes ingested by an earlier run, or an empty file
                if item.status == "quarantined":
                    _quarantine_file(con, item, now)
                results.append(item)
                _say(progress, item.describe())
                continue
            if item.sha256 in seen:  # the same bytes earlier in this run
                con.execute(f"DROP TABLE {item.table}")
                results.append(FileResult(source.name, "skipped", sha256=item.sha256, note=seen[item.sha256],
                                          seconds=time.perf_counter() - item.started))
                _say(progress, results[-1].describe())
                continue
            seen[item.sha256] = f"same bytes as {source.name} (earlier in this run)"
            kind = item.shape.kind
            if batch.files and (batch.kind != kind or kind == "customers"):
                results += _flush(con, batch, now, progress)
            batch.kind = kind
            batch.files.append(item)
            if kind == "customers" or batch.rows >= settings.batch_rows:
                results += _flush(con, batch, now, progress)
        results += _flush(con, batch, now, progress)
    return report()


def _is_empty(path: Path) -> bool:
    """No header and no rows: 0 bytes, or nothing but blank lines (and a byte order mark)."""
    if path.stat().st_size > _EMPTY_PROBE_BYTES:
        return False
    return not path.read_bytes().removeprefix(codecs.BOM_UTF8).strip()


def _quarantine_file(con: duckdb.DuckDBPyConnection, result: FileResult, now: datetime) -> None:
    """One whole-file quarantine row (``row_number`` NULL, kind 'file'), written once per file name."""
    con.execute("""
        INSERT INTO quarantine (source_file, row_number, kind, field, reason, severity, raw, ingested_at)
        SELECT $source, NULL, 'file', NULL, $reason, 'rejected', NULL, $now
        WHERE NOT EXISTS (SELECT 1 FROM quarantine WHERE source_file = $source AND kind = 'file' AND reason = $reason)""",
                {"source": result.source_file, "reason": result.note, "now": now})


def _already_ingested(con: duckdb.DuckDBPyConnection, sha: str) -> str | None:
    row = con.execute("SELECT source_file, ingested_at FROM ingested_files WHERE sha256 = ?", [sha]).fetchone()
    if row is None:
        return None
    return f"same bytes already ingested as {row[0]} at {row[1]:%Y-%m-%d %H:%M:%S} UTC"


__all__ = [
    "IngestError", "IngestReport", "FileResult", "IngestSettings", "SourceFile", "FileShape",
    "ingest_paths", "discover", "inspect_file", "classify", "sha256_file", "format_of",
    "EVENT_COLUMNS", "CUSTOMER_COLUMNS", "FLAGGED",
]
