"""Property tests for ingest: random mixes of good, bad and duplicate rows in every format.

Each example builds a small file from a list of row *kinds* (the oracle: each kind says
what must happen to the row), ingests it into a fresh in-memory DuckDB and checks:

* accounting — every row is loaded, rejected or recognised as already stored, exactly once;
* row numbers map back — the quarantine holds exactly the bad rows, at their own row
  number, with the field the kind broke;
* idempotency — the same rows again, under another name and in another format, add nothing;
* the events table never shrinks over a sequence of ingests.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from valuemail.config import load_config
from valuemail.ingest import ingest_paths
from valuemail.warehouse import ensure_schema

NOW = datetime(2026, 11, 20, 12, 0, 0)
HEADER = ["event_id", "customer_id", "occurred_at", "event_type", "quantity", "duration_saved_s", "amount_saved",
          "currency", "properties"]
KNOWN = ["workflow_run", "email_automated", "report_generated", "login"]
SETTINGS = settings(max_examples=12, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# kind -> (outcome, quarantined field).  outcome: loaded | flagged | rejected | unchanged
KINDS = {
    "good": ("loaded", None),
    "unknown_type": ("flagged", "event_type"),
    "no_customer": ("rejected", "customer_id"),
    "bad_time": ("rejected", "occurred_at"),
    "future": ("rejected", "occurred_at"),
    "negative_qty": ("rejected", "quantity"),
    "fraction_qty": ("rejected", "quantity"),
    "negative_duration": ("rejected", "duration_saved_s"),
    "amount_no_currency": ("rejected", "currency"),
    "bad_json": ("rejected", "properties"),
    "dup_same": ("unchanged", None),
    "dup_other": ("rejected", "event_id"),
    "malformed": ("rejected", None),      # CSV: one field too many; NDJSON: not JSON
}
ROW_KINDS = list(KINDS)


@dataclass(frozen=True)
class Row:
    kind: str
    values: dict[str, str]


def _timestamp(base: datetime, style: int) -> str:
    if style == 0:
        return base.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 1:
        return (base + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    if style == 2:
        return base.strftime("%Y-%m-%d %H:%M:%S")
    return base.strftime("%Y-%m-%dT%H:%M:%S.000-00:00")


@st.composite
def event_rows(draw, min_size: int = 1, max_size: int = 25, prefix: str = "g") -> list[Row]:
    kinds = draw(st.lists(st.sampled_from(ROW_KINDS), min_size=min_size, max_size=max_size))
    rows: list[Row] = []
    goods: list[dict[str, str]] = []
    for i, kind in enumerate(kinds):
        if kind in ("dup_same", "dup_other") and not goods:
            kind = "good"
        base = datetime(2026, 1, 1) + timedelta(minutes=draw(st.integers(0, 400_000)))
        v = {
            "event_id": f"{prefix}{i}", "customer_id": f"c{draw(st.integers(0, 5))}",
            "occurred_at": _timestamp(base, draw(st.integers(0, 3))),
            "event_type": draw(st.sampled_from(KNOWN)),
            "quantity": draw(st.sampled_from(["", "0", "1", "3", "12"])),
            "duration_saved_s": draw(st.sampled_from(["", "0", "1.5", "60"])),
            "amount_saved": "", "currency": "", "properties": draw(st.sampled_from(["", '{"k": 1}', "[]"])),
        }
        if draw(st.booleans()):
            v["amount_saved"], v["currency"] = draw(st.sampled_from(["0", "2.5", "10"])), "EUR"
        if kind == "unknown_type":
            v["event_type"] = "mystery_" + draw(st.sampled_from(["a", "b"]))
        elif kind == "no_customer":
            v["customer_id"] = ""
        elif kind == "bad_time":
            v["occurred_at"] = draw(st.sampled_from(["soon", "2026-13-01", "01/02/2026", "infinity"]))
        elif kind == "future":
            v["occurred_at"] = _timestamp(NOW + timedelta(days=draw(st.integers(2, 900))), 0)
        elif kind == "negative_qty":
            v["quantity"] = str(-draw(st.integers(1, 50)))
        elif kind == "fraction_qty":
            v["quantity"] = draw(st.sampled_from(["0.5", "1.25", "two"]))
        elif kind == "negative_duration":
            v["duration_saved_s"] = "-" + draw(st.sampled_from(["1", "0.5"]))
        elif kind == "amount_no_currency":
            v["amount_saved"], v["currency"] = "5", ""
        elif kind == "bad_json":
            v["properties"] = draw(st.sampled_from(["{", "{'single': 1}", "nope"]))
        elif kind == "dup_same":
            v = dict(draw(st.sampled_from(goods)))
        elif kind == "dup_other":
            original = draw(st.sampled_from(goods))
            v = dict(original, quantity=str(int(original["quantity"] or "1") + 1))
        if kind == "good":
            goods.append(v)
        rows.append(Row(kind, v))
    return rows


def write_rows(path: Path, rows: list[Row]) -> Path:
    """Write rows as CSV, NDJSON or (all-text) Parquet, chosen by the suffix."""
    if path.suffix == ".csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(HEADER)
        for row in rows:
            values = [row.values[c] for c in HEADER]
            writer.writerow(values + ["surplus"] if row.kind == "malformed" else values)
        path.write_text(buf.getvalue())
    elif path.suffix == ".ndjson":
        lines = []
        for row in rows:
            if row.kind == "malformed":
                lines.append('{"event_id": "broken", ')
            else:
                lines.append(json.dumps({c: v for c, v in row.values.items() if v != ""}))
        path.write_text("\n".join(lines) + "\n")
    else:
        table = pa.table({c: [r.values[c] or None for r in rows] for c in HEADER})
        pq.write_table(table, path)
    return path


def expected(rows: list[Row], suffix: str) -> list[tuple[str, str | None]]:
    """Outcome per row; Parquet cannot hold a malformed line (it is written as a good row)."""
    out = []
    for row in rows:
        kind = "good" if (row.kind == "malformed" and suffix == ".parquet") else row.kind
        out.append(KINDS[kind])
    return out


def recognisable(rows: list[Row], suffix: str) -> bool:
    """An NDJSON file without one valid JSON object cannot be told from garbage: refused."""
    return suffix != ".ndjson" or any(r.kind != "malformed" for r in rows)


def fresh():
    con = duckdb.connect()
    ensure_schema(con)
    return con


def run(con, config, path: Path):
    return ingest_paths(con, [str(path)], config, now=NOW)


SUFFIXES = st.sampled_from([".csv", ".ndjson", ".parquet"])


@SETTINGS
@given(rows=event_rows(), suffix=SUFFIXES)
def test_every_row_is_accounted_for_and_quarantined_at_its_own_row_number(rows, suffix):
    assume(recognisable(rows, suffix))
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(home=tmp)
        con = fresh()
        path = write_rows(Path(tmp) / f"events{suffix}", rows)
        report = run(con, config, path)
        outcomes = expected(rows, suffix)
        [result] = report.files
        assert result.rows_read == len(rows)
        assert result.rows_read == result.rows_loaded + result.rows_rejected + result.rows_unchanged
        assert result.rows_loaded == sum(o in ("loaded", "flagged") for o, _ in outcomes)
        assert result.rows_rejected == sum(o == "rejected" for o, _ in outcomes)
        assert result.rows_flagged == sum(o == "flagged" for o, _ in outcomes)
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == result.rows_loaded
        got = con.execute("SELECT row_number, field, severity FROM quarantine ORDER BY row_number").fetchall()
        want = [(i, field, "flagged" if o == "flagged" else "rejected")
                for i, (o, field) in enumerate(outcomes, start=1) if o in ("rejected", "flagged")]
        assert got == want
        con.close()


@SETTINGS
@given(rows=event_rows(), first=SUFFIXES, second=SUFFIXES)
def test_the_same_rows_again_in_another_file_and_format_add_nothing(rows, first, second):
    assume(recognisable(rows, first) and recognisable(rows, second))
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(home=tmp)
        con = fresh()
        run(con, config, write_rows(Path(tmp) / f"a{first}", rows))
        before = con.execute("SELECT event_id, customer_id, occurred_at, quantity FROM events ORDER BY ALL").fetchall()
        report = run(con, config, write_rows(Path(tmp) / f"b{second}", rows))
        after = con.execute("SELECT event_id, customer_id, occurred_at, quantity FROM events ORDER BY ALL").fetchall()
        # Parquet cannot carry a malformed line: written there, that row is a good, new event.
        extra = sum(r.kind == "malformed" for r in rows) if second == ".parquet" != first else 0
        assert report.events_loaded == extra and len(after) == len(before) + extra
        assert set(before) <= set(after)
        con.close()


@SETTINGS
@given(batches=st.lists(st.tuples(event_rows(max_size=10), SUFFIXES), min_size=2, max_size=4))
def test_events_never_decrease_and_ids_stay_unique(batches):
    assume(all(recognisable(rows, suffix) for rows, suffix in batches))
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(home=tmp)
        con = fresh()
        seen = 0
        for n, (rows, suffix) in enumerate(batches):
            run(con, config, write_rows(Path(tmp) / f"f{n}{suffix}", rows))
            total, distinct = con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
            assert total >= seen and total == distinct
            seen = total
        con.close()


@SETTINGS
@given(rows=event_rows(min_size=3), cut=st.integers(1, 2))
def test_splitting_a_file_into_batches_changes_nothing(rows, cut):
    """One file or the same rows split across files (one batch or several): same events."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = [r for r in rows if r.kind != "malformed"]
        whole = fresh()
        run(whole, load_config(home=tmp), write_rows(Path(tmp) / "whole.csv", rows))
        split_at = max(1, len(rows) * cut // 3)
        for batch_rows in (1, 10_000):
            parts = fresh()
            config = load_config(home=tmp, overrides={"ingest": {"batch_rows": batch_rows}})
            a = write_rows(Path(tmp) / f"part-a-{batch_rows}.csv", rows[:split_at])
            b = write_rows(Path(tmp) / f"part-b-{batch_rows}.csv", rows[split_at:])
            ingest_paths(parts, [str(a), str(b)], config, now=NOW)
            q = "SELECT event_id, customer_id, occurred_at, event_type, quantity FROM events ORDER BY ALL"
            assert parts.execute(q).fetchall() == whole.execute(q).fetchall()
            parts.close()
        whole.close()
