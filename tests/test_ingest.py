"""Ingest: formats, every quarantine reason (file, row, field, reason), idempotency, failures.

Every file here is hand-made and tiny; ``NOW`` pins the ingest time so the future-timestamp
rule is deterministic.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from valuemail.config import load_config
from valuemail.ingest import IngestError, IngestReport, classify, ingest_paths

NOW = datetime(2026, 11, 20, 12, 0, 0)
EVENT_HEADER = ["event_id", "customer_id", "occurred_at", "event_type", "quantity",
                "duration_saved_s", "amount_saved", "currency", "properties"]
GOOD = ["e0", "c1", "2026-11-01T09:00:00Z", "workflow_run", "1", "", "", "", ""]
CUSTOMER_HEADER = ["customer_id", "email", "name", "locale", "timezone", "plan", "country", "signed_up_at",
                   "company", "hourly_rate", "currency"]
ANN = ["c1", "ann@acme.example", "Ann", "en", "Europe/Budapest", "pro", "HU", "2025-01-01T00:00:00Z", "Acme", "40", "EUR"]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_ndjson(path: Path, records: list[dict | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def ingest(con, config, *paths, **kwargs) -> IngestReport:
    return ingest_paths(con, [str(p) for p in paths], config, now=NOW, **kwargs)


def quarantine(con) -> list[dict]:
    cur = con.execute("SELECT source_file, row_number, kind, field, reason, severity, raw FROM quarantine "
                      "ORDER BY source_file, row_number")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def count(con, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# --------------------------------------------------------------------------------------
# Formats and recognition
# --------------------------------------------------------------------------------------
RECORDS = [
    {"event_id": "a1", "customer_id": "c1", "occurred_at": "2026-11-02T10:00:00+02:00", "event_type": "workflow_run",
     "quantity": 3, "properties": {"app": "slack"}},
    {"event_id": "a2", "customer_id": "c2", "occurred_at": "2026-11-02 10:00:00", "event_type": "report_generated"},
    {"event_id": "a3", "customer_id": "c2", "occurred_at": "2026-11-03T00:00:00Z", "event_type": "document_signed",
     "quantity": 2, "duration_saved_s": 90.5, "amount_saved": 3.25, "currency": "usd"},
]


def _as_csv_rows(records):
    rows = []
    for r in records:
        rows.append([json.dumps(r[c]) if c == "properties" and c in r else str(r.get(c, "")) for c in EVENT_HEADER])
    return rows


@pytest.mark.parametrize("suffix", [".csv", ".ndjson", ".jsonl", ".json", ".parquet"])
def test_each_format_loads_the_same_events(tmp_path, config, warehouse, suffix):
    path = tmp_path / f"events{suffix}"
    if suffix == ".csv":
        write_csv(path, EVENT_HEADER, _as_csv_rows(RECORDS))
    elif suffix == ".parquet":
        table = pa.table({
            "event_id": ["a1", "a2", "a3"], "customer_id": ["c1", "c2", "c2"],
            "occurred_at": pa.array([datetime(2026, 11, 2, 8), datetime(2026, 11, 2, 10), datetime(2026, 11, 3)],
                                    pa.timestamp("us", tz="UTC")),
            "event_type": ["workflow_run", "report_generated", "document_signed"],
            "quantity": pa.array([3, None, 2], pa.int64()), "duration_saved_s": [None, None, 90.5],
            "amount_saved": [None, None, 3.25], "currency": [None, None, "usd"],
            "properties": ['{"app": "slack"}', None, None],
        })
        pq.write_table(table, path)
    else:
        write_ndjson(path, RECORDS)
    report = ingest(warehouse, config, path)
    assert report.events_loaded == 3 and report.quarantined == 0 and report.flagged == 0
    rows = warehouse.execute(
        "SELECT event_id, customer_id, occurred_at, event_type, quantity, duration_saved_s, amount_saved, currency, "
        "properties::VARCHAR, known_type, source_file FROM events ORDER BY event_id").fetchall()
    assert [r[:4] for r in rows] == [
        ("a1", "c1", datetime(2026, 11, 2, 8), "workflow_run"),        # +02:00 converted to UTC
        ("a2", "c2", datetime(2026, 11, 2, 10), "report_generated"),   # naive means UTC
        ("a3", "c2", datetime(2026, 11, 3), "document_signed"),
    ]
    assert [r[4] for r in rows] == [3, 1, 2]                           # quantity defaults to 1
    assert float(rows[2][5]) == 90.5 and float(rows[2][6]) == 3.25 and rows[2][7] == "USD"
    assert json.loads(rows[0][8]) == {"app": "slack"}
    assert all(r[9] for r in rows) and {r[10] for r in rows} == {str(path.resolve())}


def test_folders_are_walked_recursively_and_other_files_ignored(tmp_path, config, warehouse):
    write_csv(tmp_path / "land" / "2026" / "11" / "a.csv", EVENT_HEADER, [GOOD])
    write_csv(tmp_path / "land" / "b.csv", EVENT_HEADER, [["e9"] + GOOD[1:]])
    (tmp_path / "land" / "README.txt").write_text("not data")
    (tmp_path / "land" / "_SUCCESS.csv").write_text("")
    (tmp_path / "land" / ".hidden.csv").write_text("garbage")
    report = ingest(warehouse, config, tmp_path / "land")
    assert report.files_loaded == 2 and report.events_loaded == 2
    assert len(report.ignored) == 3
    assert [Path(f.source_file).name for f in report.files] == ["a.csv", "b.csv"]  # sorted by path


def test_column_names_are_matched_case_insensitively_and_extra_columns_ignored(tmp_path, config, warehouse):
    path = write_csv(tmp_path / "e.csv", ["Customer_ID", " occurred_at ", "EVENT_TYPE", "browser"],
                     [["c1", "2026-11-01", "login", "firefox"]])
    assert ingest(warehouse, config, path).events_loaded == 1


def test_semicolon_and_tab_separated_files(tmp_path, config, warehouse):
    (tmp_path / "semi.csv").write_text("customer_id;occurred_at;event_type;quantity\nc1;2026-11-01;login;2\n")
    (tmp_path / "tab.csv").write_text("customer_id\toccurred_at\tevent_type\nc1\t2026-11-02\tlogin\n")
    report = ingest(warehouse, config, tmp_path / "semi.csv", tmp_path / "tab.csv")
    assert report.events_loaded == 2
    assert warehouse.execute("SELECT sum(quantity) FROM events").fetchone()[0] == 3


def test_classify_by_columns():
    assert classify(["customer_id", "occurred_at", "event_type"]) == "events"
    assert classify(["customer_id", "email", "signed_up_at", "locale"]) == "customers"
    assert classify(["customer_id", "email"]) is None
    assert classify(["customer_id", "occurred_at", "event_type", "email", "signed_up_at"]) is None
    # NDJSON leaves out empty fields: a file whose lines all lack customer_id is still events.
    assert classify(["event_id", "occurred_at"], sparse=True) == "events"
    assert classify(["customer_id", "email"], sparse=True) == "customers"
    assert classify(["customer_id", "occurred_at", "email"], sparse=True) is None


# --------------------------------------------------------------------------------------
# Every event quarantine reason: file, row number, field, reason, severity
# --------------------------------------------------------------------------------------
BAD_EVENT_ROWS = [
    # (row after the good one, field, words the reason must contain)
    (["e1", "", "2026-11-01", "workflow_run", "1", "", "", "", ""], "customer_id", "missing required field customer_id"),
    (["e1", "c1", "", "workflow_run", "1", "", "", "", ""], "occurred_at", "missing required field occurred_at"),
    (["e1", "c1", "2026-11-01", " ", "1", "", "", "", ""], "event_type", "missing required field event_type"),
    (["e1", "c1", "yesterday", "workflow_run", "1", "", "", "", ""], "occurred_at", "unparseable timestamp 'yesterday'"),
    (["e1", "c1", "2026-02-30T10:00:00", "workflow_run", "1", "", "", "", ""], "occurred_at", "unparseable timestamp"),
    (["e1", "c1", "infinity", "workflow_run", "1", "", "", "", ""], "occurred_at", "unparseable timestamp"),
    (["e1", "c1", "2026-11-21T13:00:00Z", "workflow_run", "1", "", "", "", ""], "occurred_at", "in the future"),
    (["e1", "c1", "2026-11-01", "workflow_run", "-2", "", "", "", ""], "quantity", "negative quantity -2"),
    (["e1", "c1", "2026-11-01", "workflow_run", "1.5", "", "", "", ""], "quantity", "quantity '1.5' is not a whole number"),
    (["e1", "c1", "2026-11-01", "workflow_run", "three", "", "", "", ""], "quantity", "not a whole number"),
    (["e1", "c1", "2026-11-01", "workflow_run", "1", "-5", "", "", ""], "duration_saved_s", "negative value -5 in duration_saved_s"),
    (["e1", "c1", "2026-11-01", "workflow_run", "1", "fast", "", "", ""], "duration_saved_s", "'fast' is not a number"),
    (["e1", "c1", "2026-11-01", "workflow_run", "1", "", "-1.25", "USD", ""], "amount_saved", "negative value -1.25 in amount_saved"),
    (["e1", "c1", "2026-11-01", "workflow_run", "1", "", "lots", "USD", ""], "amount_saved", "'lots' is not a number"),
    (["e1", "c1", "2026-11-01", "workflow_run", "1", "", "12.5", "", ""], "currency", "amount_saved 12.5 requires currency"),
    (["e1", "c1", "2026-11-01", "workflow_run", "1", "", "12.5", "EURO", ""], "currency", "'EURO' is not a 3-letter"),
    (["e1", "c1", "2026-11-01", "workflow_run", "1", "", "", "", "{not json"], "properties", "properties is not valid JSON"),
]


@pytest.mark.parametrize("bad,field,reason", BAD_EVENT_ROWS, ids=[r[2][:40] for r in BAD_EVENT_ROWS])
def test_bad_event_row_is_rejected_with_file_row_field_and_reason(tmp_path, config, warehouse, bad, field, reason):
    path = write_csv(tmp_path / "events.csv", EVENT_HEADER, [GOOD, bad, ["e2"] + GOOD[1:]])
    report = ingest(warehouse, config, path)
    assert report.events_loaded == 2 and report.quarantined == 1   # the good rows of the file still load
    [q] = quarantine(warehouse)
    assert q["source_file"] == str(path.resolve())
    assert q["row_number"] == 2 and q["kind"] == "events" and q["field"] == field and q["severity"] == "rejected"
    assert reason in q["reason"]
    assert json.loads(q["raw"])["event_id"] == "e1"                # the row, as JSON, for the analyst
    assert warehouse.execute("SELECT list(event_id ORDER BY event_id) FROM events").fetchone()[0] == ["e0", "e2"]


def test_unknown_event_type_is_kept_unvalued_and_flagged(tmp_path, config, warehouse):
    path = write_csv(tmp_path / "events.csv", EVENT_HEADER, [GOOD, ["e1", "c1", "2026-11-01", "teleported", "1", "", "", "", ""]])
    report = ingest(warehouse, config, path)
    assert report.events_loaded == 2 and report.flagged == 1 and report.quarantined == 0
    [q] = quarantine(warehouse)
    assert (q["row_number"], q["field"], q["severity"]) == (2, "event_type", "flagged")
    assert "unknown event type 'teleported'" in q["reason"]
    assert warehouse.execute("SELECT known_type FROM events WHERE event_id = 'e1'").fetchone()[0] is False


def test_timestamps_and_numbers_that_are_accepted(tmp_path, config, warehouse):
    rows = [
        ["t1", "c1", "2026-11-01T10:00:00.250+05:30", "login", "", "", "", "", ""],
        ["t2", "c1", "2026-11-01T10:00:00-0800", "login", "2.0", "", "", "", ""],
        ["t3", "c1", " 2026-11-01 ", "login", " 7 ", "0", "0", "eur", "[1, 2]"],
        ["t4", "c1", "2026-11-21T11:00:00Z", "login", "0", "", "", "", ""],   # 23 h ahead: within tolerance
    ]
    report = ingest(warehouse, config, write_csv(tmp_path / "e.csv", EVENT_HEADER, rows))
    assert report.events_loaded == 4, quarantine(warehouse)
    got = dict(warehouse.execute("SELECT event_id, occurred_at FROM events").fetchall())
    assert got["t1"] == datetime(2026, 11, 1, 4, 30, 0, 250000)
    assert got["t2"] == datetime(2026, 11, 1, 18, 0)
    assert got["t3"] == datetime(2026, 11, 1)
    assert warehouse.execute("SELECT list(quantity ORDER BY event_id) FROM events").fetchone()[0] == [1, 2, 7, 0]


def test_future_tolerance_comes_from_config(tmp_path, warehouse):
    config = load_config(home=tmp_path, overrides={"ingest": {"future_tolerance_hours": 0}})
    rows = [["t1", "c1", "2026-11-20T13:00:00Z", "login", "1", "", "", "", ""]]
    report = ingest(warehouse, config, write_csv(tmp_path / "e.csv", EVENT_HEADER, rows))
    assert report.quarantined == 1 and "more than 0 h in the future" in quarantine(warehouse)[0]["reason"]


# --------------------------------------------------------------------------------------
# Duplicates and idempotency
# --------------------------------------------------------------------------------------
def test_duplicate_id_within_a_file(tmp_path, config, warehouse):
    rows = [GOOD,
            ["e0", "c1", "2026-11-01T10:00:00+01:00", "workflow_run", "1", "", "", "", ""],  # same content: skipped
            ["e0", "c9", "2026-11-01T09:00:00Z", "workflow_run", "1", "", "", "", ""]]       # different: rejected
    report = ingest(warehouse, config, write_csv(tmp_path / "e.csv", EVENT_HEADER, rows))
    assert (report.events_loaded, report.quarantined, report.unchanged) == (1, 1, 1)
    [q] = quarantine(warehouse)
    assert q["row_number"] == 3 and q["field"] == "event_id"
    assert "duplicate event_id 'e0' with different content (first seen at row 1)" in q["reason"]


def test_duplicate_id_against_stored_events(tmp_path, config, warehouse):
    first = write_csv(tmp_path / "first.csv", EVENT_HEADER, [GOOD])
    ingest(warehouse, config, first)
    second = write_csv(tmp_path / "second.csv", EVENT_HEADER, [
        GOOD,                                                                    # same id, same content
        ["e0", "c1", "2026-11-01T09:00:00Z", "workflow_run", "5", "", "", "", ""],  # same id, new content
        ["e3"] + GOOD[1:]])
    report = ingest(warehouse, config, second)
    assert (report.events_loaded, report.quarantined, report.unchanged) == (1, 1, 1)
    [q] = quarantine(warehouse)
    assert q["source_file"] == str(second.resolve()) and q["row_number"] == 2
    assert f"already stored with different content (from {first.resolve()})" in q["reason"]
    assert warehouse.execute("SELECT quantity FROM events WHERE event_id = 'e0'").fetchone()[0] == 1


def test_same_file_again_is_skipped_by_its_bytes(tmp_path, config, warehouse):
    path = write_csv(tmp_path / "e.csv", EVENT_HEADER, [GOOD, ["e1", "", "x", "login", "1", "", "", "", ""]])
    ingest(warehouse, config, path)
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(path.read_bytes())
    report = ingest(warehouse, config, path, copy)
    assert report.files_skipped == 2 and report.events_loaded == 0
    assert "same bytes already ingested as" in report.files[1].note
    assert count(warehouse, "events") == 1 and count(warehouse, "quarantine") == 1  # nothing doubled


def test_same_rows_in_another_file_add_nothing(tmp_path, config, warehouse):
    ingest(warehouse, config, write_csv(tmp_path / "a.csv", EVENT_HEADER, [GOOD, ["e1"] + GOOD[1:]]))
    more = write_csv(tmp_path / "b.csv", EVENT_HEADER, [["e1"] + GOOD[1:], GOOD, ["e2"] + GOOD[1:]])
    report = ingest(warehouse, config, more)
    assert (report.events_loaded, report.unchanged, report.quarantined) == (1, 2, 0)
    assert count(warehouse, "events") == 3


def test_missing_event_id_gets_a_stable_content_hash(tmp_path, config, warehouse):
    header = EVENT_HEADER[1:]
    rows = [["c1", "2026-11-01T10:00:00+01:00", "login", "1", "", "", "", ""],
            ["c1", "2026-11-01T10:00:00+01:00", "login", "1", "", "", "", ""],   # identical: one event
            ["c1", "2026-11-01T10:00:00+01:00", "login", "2", "", "", "", ""]]
    report = ingest(warehouse, config, write_csv(tmp_path / "a.csv", header, rows))
    assert (report.events_loaded, report.unchanged) == (2, 1)
    # The same events in another format, written differently (UTC, Parquet): same ids, nothing added.
    pq.write_table(pa.table({"customer_id": ["c1", "c1"], "occurred_at": [datetime(2026, 11, 1, 9)] * 2,
                             "event_type": ["login", "login"], "quantity": [1, 2]}), tmp_path / "b.parquet")
    report = ingest(warehouse, config, tmp_path / "b.parquet")
    assert (report.events_loaded, report.unchanged) == (0, 2)
    ids = [r[0] for r in warehouse.execute("SELECT event_id FROM events").fetchall()]
    assert len(set(ids)) == 2 and all(len(i) == 32 for i in ids)


def test_batches_of_any_size_give_the_same_warehouse(tmp_path):
    """Files staged in one batch or one by one: same rows loaded, same rows quarantined."""
    from valuemail.warehouse import ensure_schema

    files = [
        write_csv(tmp_path / "in" / "a.csv", EVENT_HEADER, [GOOD, ["e1"] + GOOD[1:]]),
        write_csv(tmp_path / "in" / "b.csv", EVENT_HEADER, [["e1", "c2"] + GOOD[2:], ["e2"] + GOOD[1:], GOOD]),
    ]
    results, reasons = [], []
    for batch_rows in (1, 1000):
        config = load_config(home=tmp_path / str(batch_rows), overrides={"ingest": {"batch_rows": batch_rows}})
        con = duckdb.connect(str(tmp_path / f"{batch_rows}.duckdb"))
        ensure_schema(con)
        report = ingest(con, config, *files)
        results.append((
            [(f.rows_loaded, f.rows_rejected, f.rows_unchanged) for f in report.files],
            con.execute("SELECT event_id, customer_id FROM events ORDER BY ALL").fetchall(),
            con.execute("SELECT source_file, row_number, field FROM quarantine ORDER BY ALL").fetchall(),
        ))
        reasons.append(con.execute("SELECT reason FROM quarantine").fetchone()[0])
        con.close()
    assert results[0] == results[1]
    assert results[0][0] == [(2, 0, 0), (1, 1, 1)]
    assert f"already stored with different content (from {files[0].resolve()})" in reasons[0]
    assert f"first seen at row 2 of {files[0].resolve()})" in reasons[1]


def test_files_read_side_by_side_give_the_same_warehouse_as_one_by_one(tmp_path):
    """ingest.readers: files are read ahead on several connections, but committed in file order."""
    from valuemail.warehouse import ensure_schema

    folder = tmp_path / "in"
    a = write_csv(folder / "a.csv", EVENT_HEADER, [GOOD, ["e1"] + GOOD[1:], ["e3", "c1", "tomorrow"] + GOOD[3:]])
    write_csv(folder / "b.csv", EVENT_HEADER, [["e1", "c2"] + GOOD[2:], ["e2"] + GOOD[1:]])
    (folder / "c.csv").write_bytes(a.read_bytes())                                  # same bytes as a.csv
    pq.write_table(pa.table({"event_id": ["e4", "e2"], "customer_id": ["c3", "c1"],
                             "occurred_at": [datetime(2026, 11, 2)] * 2, "event_type": ["login", "login"]}),
                   folder / "d.parquet")
    seen = []
    for readers in (1, 3):
        config = load_config(home=tmp_path / str(readers), overrides={"ingest": {"readers": readers, "batch_rows": 2}})
        con = duckdb.connect(str(tmp_path / f"{readers}.duckdb"))
        ensure_schema(con)
        report = ingest(con, config, folder)
        seen.append((
            [(Path(f.source_file).name, f.status, f.rows_loaded, f.rows_rejected, f.rows_unchanged) for f in report.files],
            con.execute("SELECT event_id, customer_id, source_file FROM events ORDER BY ALL").fetchall(),
            con.execute("SELECT source_file, row_number, field, reason FROM quarantine ORDER BY ALL").fetchall(),
            con.execute("SELECT source_file, rows_loaded FROM ingested_files ORDER BY ALL").fetchall(),
        ))
        assert not [r for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()
                    if r[0].startswith("_vm_ingest")]                                # staging is gone
        con.close()
    assert seen[0] == seen[1]
    assert seen[0][0] == [("a.csv", "loaded", 2, 1, 0), ("b.csv", "loaded", 1, 1, 0), ("c.csv", "skipped", 0, 0, 0),
                          ("d.parquet", "loaded", 1, 1, 0)]


# --------------------------------------------------------------------------------------
# Malformed lines keep everybody's row numbers right
# --------------------------------------------------------------------------------------
def test_malformed_csv_lines_are_quarantined_with_their_row_number(tmp_path, config, warehouse):
    path = tmp_path / "e.csv"
    path.write_text(
        ",".join(EVENT_HEADER) + "\n"
        + "e1,c1,2026-11-01,login,1,,,,\n"
        + "e2,c1,2026-11-01,login,1,,,,,one too many\n"        # row 2: malformed
        + 'e3,c1,2026-11-01,login,1,,,,"{""a"":1}"\n'
        + "e4,c1,2026-11-01\n"                                 # row 4: malformed (too few)
        + "e5,c1,2026-11-01,login,1,,,,,x\n"                  # row 5: malformed
        + "e6,c1,2026-11-01,login,-1,,,,\n"                    # row 6: bad quantity
        + "e7,c1,2026-11-01,login,1,,,,\n")
    report = ingest(warehouse, config, path)
    assert report.files[0].rows_read == 7 and report.events_loaded == 3 and report.quarantined == 4
    got = [(q["row_number"], q["field"]) for q in quarantine(warehouse)]
    assert got == [(2, None), (4, None), (5, None), (6, "quantity")]
    assert "malformed CSV row" in quarantine(warehouse)[0]["reason"]
    assert json.loads(quarantine(warehouse)[0]["raw"])["line"].startswith("e2,c1")


def test_ndjson_bad_lines_and_blank_lines(tmp_path, config, warehouse):
    path = write_ndjson(tmp_path / "e.ndjson", [
        RECORDS[0], "", "{not json", "[1, 2]", RECORDS[1], "   ",
        {"event_id": "b1", "customer_id": "c1", "occurred_at": "2026-11-01", "event_type": "login", "quantity": -1},
    ])
    report = ingest(warehouse, config, path)
    assert report.events_loaded == 2 and report.quarantined == 3
    got = [(q["row_number"], q["field"], q["reason"]) for q in quarantine(warehouse)]
    assert got[0][:2] == (3, None) and "not valid JSON" in got[0][2]      # line numbers, blank lines counted
    assert got[1][:2] == (4, None) and "not a JSON object" in got[1][2]
    assert got[2][:2] == (7, "quantity")


def test_json_array_file_is_refused_with_a_hint(tmp_path, config, warehouse):
    path = tmp_path / "e.json"
    path.write_text(json.dumps(RECORDS))
    with pytest.raises(IngestError, match="JSON array"):
        ingest(warehouse, config, path)


def test_parquet_row_numbers_and_typed_checks(tmp_path, config, warehouse):
    pq.write_table(pa.table({
        "customer_id": ["c1", "c1", None, "c1"],
        "occurred_at": [datetime(2026, 11, 1)] * 4,
        "event_type": ["login"] * 4,
        "quantity": pa.array([1.0, 2.5, 1.0, -1.0], pa.float64()),
    }), tmp_path / "e.parquet", row_group_size=2)
    report = ingest(warehouse, config, tmp_path / "e.parquet")
    assert report.events_loaded == 1
    assert [(q["row_number"], q["field"]) for q in quarantine(warehouse)] == [
        (2, "quantity"), (3, "customer_id"), (4, "quantity")]


def test_row_numbers_stay_in_file_order_when_duckdb_reads_in_parallel(tmp_path, config, warehouse):
    """200k rows, many row groups / CSV chunks, two threads: bad rows are found at their own number.

    Guards the design: row numbers come from the scan itself (streaming window, Parquet
    file_row_number), never from the order rows arrive in after a parallel, joining plan.
    """
    n, bad_every = 200_000, 19_997
    src = duckdb.connect()
    src.execute("SET threads = 2")
    rows = f"""SELECT 'r' || i AS event_id, 'c' || (i % 97) AS customer_id,
                      TIMESTAMP '2026-01-01' + to_seconds(i) AS occurred_at, 'login' AS event_type,
                      CASE WHEN (i + 1) % {bad_every} = 0 THEN -1 ELSE 1 END AS quantity
               FROM range({n}) t(i)"""
    src.execute(f"COPY ({rows}) TO '{tmp_path / 'big.csv'}' (HEADER)")
    src.execute(f"COPY ({rows}) TO '{tmp_path / 'big.parquet'}' (ROW_GROUP_SIZE 5000)")
    src.close()
    warehouse.execute("SET threads = 2")
    want = [k for k in range(1, n + 1) if k % bad_every == 0]
    for name in ("big.csv", "big.parquet"):
        report = ingest(warehouse, config, tmp_path / name)
        got = [r[0] for r in warehouse.execute(
            "SELECT row_number FROM quarantine WHERE source_file LIKE ? ORDER BY 1", [f"%{name}"]).fetchall()]
        assert got == want, name
        assert report.files[0].rows_read == n
        bad_ids = warehouse.execute("SELECT list(json_extract_string(raw, '$.event_id') ORDER BY row_number) "
                                    "FROM quarantine WHERE source_file LIKE ?", [f"%{name}"]).fetchone()[0]
        assert bad_ids == [f"r{k - 1}" for k in want], name            # the raw row is that row


# --------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------
def test_customers_rules(tmp_path, config, warehouse):
    rows = [
        ANN,
        ["c2", "not-an-email", "Bob", "en", "UTC", "free", "US", "2025-02-01", "", "", ""],    # kept, flagged
        ["", "x@y.example", "Nobody", "en", "UTC", "free", "US", "2025-02-01", "", "", ""],    # rejected
        ["c4", "d@y.example", "Dee", "en", "UTC", "free", "US", "", "", "", ""],               # rejected
        ["c5", "e@y.example", "Eve", "", "UTC", "free", "US", "2025-02-01", "", "", ""],       # rejected
        ["c6", "f@y.example", "Fay", "de", "Mars/Olympus", "free", "DE", "2025-02-01", "", "", ""],  # kept, UTC
    ]
    path = write_csv(tmp_path / "customers.csv", CUSTOMER_HEADER, rows)
    report = ingest(warehouse, config, path)
    assert (report.customers_loaded, report.quarantined, report.flagged) == (3, 3, 2)
    got = [(q["row_number"], q["field"], q["severity"]) for q in quarantine(warehouse)]
    assert got == [(2, "email", "flagged"), (3, "customer_id", "rejected"), (4, "signed_up_at", "rejected"),
                   (5, "locale", "rejected"), (6, "timezone", "flagged")]
    assert all(q["kind"] == "customers" for q in quarantine(warehouse))
    assert warehouse.execute("SELECT email FROM customers WHERE customer_id = 'c2'").fetchone()[0] == "not-an-email"
    assert warehouse.execute("SELECT timezone FROM customers WHERE customer_id = 'c6'").fetchone()[0] == "UTC"
    assert warehouse.execute("SELECT hourly_rate, currency FROM customers WHERE customer_id = 'c1'").fetchone() == (40, "EUR")


def test_customers_are_upserted_by_a_later_file(tmp_path, config, warehouse):
    ingest(warehouse, config, write_csv(tmp_path / "c1.csv", CUSTOMER_HEADER, [ANN]))
    moved = ANN[:4] + ["America/New_York", "team"] + ANN[6:]
    report = ingest(warehouse, config, write_csv(tmp_path / "c2.csv", CUSTOMER_HEADER, [moved, ["c7"] + ANN[1:]]))
    assert report.customers_loaded == 2
    row = warehouse.execute("SELECT timezone, plan, source_file FROM customers WHERE customer_id = 'c1'").fetchone()
    assert row == ("America/New_York", "team", str((tmp_path / "c2.csv").resolve()))
    # An unchanged copy changes nothing (and says so).
    report = ingest(warehouse, config, write_csv(tmp_path / "c3.csv", CUSTOMER_HEADER, [moved]))
    assert (report.customers_loaded, report.unchanged) == (0, 1)
    assert count(warehouse, "customers") == 2


def test_duplicate_customer_in_one_file_the_last_row_wins(tmp_path, config, warehouse):
    later = ANN[:5] + ["team"] + ANN[6:]
    report = ingest(warehouse, config, write_csv(tmp_path / "c.csv", CUSTOMER_HEADER, [ANN, later, later]))
    assert (report.customers_loaded, report.quarantined, report.unchanged) == (1, 1, 1)
    assert warehouse.execute("SELECT plan FROM customers").fetchone()[0] == "team"
    [q] = quarantine(warehouse)
    assert q["row_number"] == 1 and "appears again at row 3" in q["reason"] and json.loads(q["raw"])["plan"] == "pro"


# --------------------------------------------------------------------------------------
# Whole-file failures
# --------------------------------------------------------------------------------------
def test_unrecognised_columns_name_the_file_and_the_columns(tmp_path, config, warehouse):
    path = write_csv(tmp_path / "orders.csv", ["order_id", "amount"], [["o1", "5"]])
    with pytest.raises(IngestError) as info:
        ingest(warehouse, config, path)
    assert str(path.resolve()) in str(info.value) and "order_id, amount" in str(info.value)


def test_a_corrupt_file_stops_the_run_earlier_files_stay_committed(tmp_path, config, warehouse):
    first = write_csv(tmp_path / "in" / "a.csv", EVENT_HEADER, [GOOD])
    pq.write_table(pa.table({"customer_id": ["c1"] * 100, "occurred_at": [datetime(2026, 11, 1)] * 100,
                             "event_type": ["login"] * 100}), tmp_path / "in" / "b.parquet")
    data = (tmp_path / "in" / "b.parquet").read_bytes()
    (tmp_path / "in" / "b.parquet").write_bytes(data[: len(data) // 2])         # truncated
    write_csv(tmp_path / "in" / "c.csv", EVENT_HEADER, [["e9"] + GOOD[1:]])
    with pytest.raises(IngestError) as info:
        ingest(warehouse, config, tmp_path / "in")
    assert str((tmp_path / "in" / "b.parquet").resolve()) in str(info.value)
    assert info.value.partial is not None and info.value.partial.events_loaded == 1
    assert [r[0] for r in warehouse.execute("SELECT source_file FROM ingested_files").fetchall()] == [str(first.resolve())]
    assert count(warehouse, "events") == 1                                       # c.csv was not reached
    (tmp_path / "in" / "b.parquet").unlink()                                      # fix, re-run: continues
    report = ingest(warehouse, config, tmp_path / "in")
    assert (report.files_skipped, report.events_loaded) == (1, 1)


def test_binary_garbage_is_an_error_naming_the_file(tmp_path, config, warehouse):
    for name in ("junk.csv", "junk.parquet", "junk.ndjson"):
        path = tmp_path / name
        path.write_bytes(bytes(range(256)) * 40)
        with pytest.raises(IngestError, match=name):
            ingest(warehouse, config, path)
    assert count(warehouse, "events") == 0 and count(warehouse, "ingested_files") == 0


def test_an_empty_csv_is_quarantined(tmp_path, config, warehouse):
    (tmp_path / "e.csv").write_text("")
    report = ingest(warehouse, config, tmp_path / "e.csv")
    assert report.files_quarantined == 1 and "empty file" in report.describe()


def test_a_header_only_file_loads_nothing_and_is_remembered(tmp_path, config, warehouse):
    path = write_csv(tmp_path / "e.csv", EVENT_HEADER, [])
    assert ingest(warehouse, config, path).files[0].rows_read == 0
    assert ingest(warehouse, config, path).files_skipped == 1


def test_missing_paths_and_unsupported_files_fail_before_anything_is_written(tmp_path, config, warehouse):
    good = write_csv(tmp_path / "a.csv", EVENT_HEADER, [GOOD])
    with pytest.raises(IngestError, match="no such file or folder"):
        ingest(warehouse, config, good, tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(IngestError, match="unsupported file type"):
        ingest(warehouse, config, good, tmp_path / "notes.txt")
    assert count(warehouse, "events") == 0


# --------------------------------------------------------------------------------------
# Report, progress, bookkeeping
# --------------------------------------------------------------------------------------
def test_report_numbers_progress_and_ingested_files(tmp_path, config, warehouse):
    write_csv(tmp_path / "in" / "customers.csv", CUSTOMER_HEADER, [ANN])
    write_csv(tmp_path / "in" / "events.csv", EVENT_HEADER,
              [GOOD, ["e1", "c1", "bad", "login", "1", "", "", "", ""], ["e2", "c1", "2026-11-01", "new_thing", "", "", "", "", ""]])
    messages: list[str] = []
    report = ingest(warehouse, config, tmp_path / "in", progress=messages.append)
    meta = report.metadata()
    assert meta["files_loaded"] == 2 and meta["events_loaded"] == 2 and meta["customers_loaded"] == 1
    assert meta["rows_rejected"] == 1 and meta["rows_flagged"] == 1 and meta["rows_read"] == 4
    assert any("events.csv: events (csv), 3 rows, 2 loaded, 1 rejected, 1 flagged" in m for m in messages)
    assert any("customers.csv: customers (csv), 1 rows, 1 loaded" in m for m in messages)
    text = report.describe()
    assert "2 loaded" in text and "events: 3 rows read" in text
    files = warehouse.execute("SELECT kind, rows_read, rows_loaded, rows_quarantined, length(sha256) FROM ingested_files "
                              "ORDER BY kind").fetchall()
    assert files == [("customers", 1, 1, 0, 64), ("events", 3, 2, 2, 64)]
    assert warehouse.execute("SELECT count(DISTINCT ingested_at) FROM events").fetchone()[0] == 1


def test_session_settings_are_restored(tmp_path, config, warehouse):
    warehouse.execute("SET TimeZone = 'America/New_York'")
    ingest(warehouse, config, write_csv(tmp_path / "e.csv", EVENT_HEADER, [GOOD]))
    assert warehouse.execute("SELECT current_setting('TimeZone')").fetchone()[0] == "America/New_York"
    assert warehouse.execute("SELECT occurred_at FROM events").fetchone()[0] == datetime(2026, 11, 1, 9)
    assert not warehouse.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0]
