"""Bad input cannot take ingest down, erase stored data or garble a terminal (issue #11: 4a, 4d, 4e, 6)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from valuemail.config import ConfigError, load_config
from valuemail.ingest import IngestError
from test_ingest import ANN, CUSTOMER_HEADER, EVENT_HEADER, GOOD, count, ingest, quarantine, write_csv


# --------------------------------------------------------------------------------------
# 4a. timestamps before ingest.earliest_timestamp
# --------------------------------------------------------------------------------------
def test_timestamps_before_the_earliest_timestamp_are_quarantined(tmp_path, config, warehouse):
    rows = [["a1", "c1", "0001-01-01T00:00:00Z", "login", "1", "", "", "", ""],
            ["a2", "c1", "1677-09-22 00:12:43", "login", "1", "", "", "", ""],
            ["a3", "c1", "1989-12-31T23:59:59Z", "login", "1", "", "", "", ""],
            ["a4", "c1", "1990-01-01T00:00:00Z", "login", "1", "", "", "", ""]]
    report = ingest(warehouse, config, write_csv(tmp_path / "e.csv", EVENT_HEADER, rows))
    assert (report.events_loaded, report.quarantined) == (1, 3)
    got = [(q["row_number"], q["field"], q["severity"]) for q in quarantine(warehouse)]
    assert got == [(1, "occurred_at", "rejected"), (2, "occurred_at", "rejected"), (3, "occurred_at", "rejected")]
    assert "before 1990-01-01 (ingest.earliest_timestamp)" in quarantine(warehouse)[0]["reason"]
    pq.write_table(pa.table({"customer_id": ["c1"], "occurred_at": pa.array([0], pa.timestamp("us")),
                             "event_type": ["login"]}), tmp_path / "typed.parquet")
    assert ingest(warehouse, config, tmp_path / "typed.parquet").quarantined == 1       # 1970 < 1990
    old_signup = ["c2"] + ANN[1:7] + ["1985-05-05"] + ANN[8:]
    report = ingest(warehouse, config, write_csv(tmp_path / "c.csv", CUSTOMER_HEADER, [ANN, old_signup]))
    assert (report.customers_loaded, report.quarantined) == (1, 1)
    assert [q["field"] for q in quarantine(warehouse) if q["kind"] == "customers"] == ["signed_up_at"]


def test_the_earliest_timestamp_comes_from_config(tmp_path, warehouse):
    custom = load_config(home=tmp_path, overrides={"ingest": {"earliest_timestamp": "1960-06-01"}})
    rows = [["a1", "c1", "1970-01-01T00:00:00Z", "login", "1", "", "", "", ""],
            ["a2", "c1", "1960-05-31T23:59:59Z", "login", "1", "", "", "", ""]]
    report = ingest(warehouse, custom, write_csv(tmp_path / "e.csv", EVENT_HEADER, rows))
    assert (report.events_loaded, report.quarantined) == (1, 1)
    with pytest.raises(ConfigError, match="earliest_timestamp"):
        load_config(home=tmp_path, overrides={"ingest": {"earliest_timestamp": "long ago"}})


# --------------------------------------------------------------------------------------
# 4d. a customers file with fewer columns
# --------------------------------------------------------------------------------------
def test_absent_customer_columns_never_erase_stored_values(tmp_path, config, warehouse):
    ingest(warehouse, config, write_csv(tmp_path / "full.csv", CUSTOMER_HEADER, [ANN]))
    slim = write_csv(tmp_path / "slim.csv", ["customer_id", "email", "signed_up_at", "locale"],
                     [["c1", "ann@new.example", "2025-01-01T00:00:00Z", "hu"],
                      ["c9", "nine@acme.example", "2025-03-01", "en"]])
    report = ingest(warehouse, config, slim)
    assert report.customers_loaded == 2
    got = warehouse.execute("SELECT email, name, locale, timezone, plan, country, company, hourly_rate, currency "
                            "FROM customers WHERE customer_id = 'c1'").fetchone()
    assert got == ("ann@new.example", "Ann", "hu", "Europe/Budapest", "pro", "HU", "Acme", 40, "EUR")
    # A new customer gets the defaults, as before.
    assert warehouse.execute("SELECT timezone, plan FROM customers WHERE customer_id = 'c9'").fetchone() == ("UTC", "unknown")
    # The same slim file's content again changes nothing.
    again = write_csv(tmp_path / "slim2.csv", ["customer_id", "email", "signed_up_at", "locale"],
                      [["c1", "ann@new.example", "2025-01-01T00:00:00Z", "hu"]])
    assert (ingest(warehouse, config, again).unchanged, count(warehouse, "customers")) == (1, 2)


def test_an_update_that_blanks_a_stored_email_is_quarantined_not_applied(tmp_path, config, warehouse):
    ingest(warehouse, config, write_csv(tmp_path / "full.csv", CUSTOMER_HEADER, [ANN, ["c2"] + ANN[1:]]))
    blank = write_csv(tmp_path / "blank.csv", ["customer_id", "email", "signed_up_at", "locale"],
                      [["c1", "", "2025-01-01T00:00:00Z", "de"], ["c2", "bob@acme.example", "2025-01-01", "en"],
                       ["c3", "", "2025-01-01", "en"]])
    report = ingest(warehouse, config, blank)
    assert (report.customers_loaded, report.quarantined) == (2, 1)
    assert warehouse.execute("SELECT email, locale FROM customers WHERE customer_id = 'c1'").fetchone() == (
        "ann@acme.example", "en")                                   # the whole update was not applied
    assert warehouse.execute("SELECT email FROM customers WHERE customer_id = 'c3'").fetchone() == ("",)
    rows = [(q["source_file"].endswith("blank.csv"), q["row_number"], q["field"], q["severity"])
            for q in quarantine(warehouse)]
    assert rows == [(True, 1, "email", "rejected"), (True, 3, "email", "flagged")]
    assert "stored email" in quarantine(warehouse)[0]["reason"]


# --------------------------------------------------------------------------------------
# 4e. empty files
# --------------------------------------------------------------------------------------
def test_empty_files_are_quarantined_as_files_and_the_run_goes_on(tmp_path, config, warehouse):
    landing = tmp_path / "landing"
    landing.mkdir()
    for name in ("a.csv", "b.parquet", "c.ndjson"):
        (landing / name).write_bytes(b"")
    (landing / "d.csv").write_text("\n\r\n  \n")
    write_csv(landing / "e.csv", EVENT_HEADER, [GOOD])
    report = ingest(warehouse, config, landing)
    assert report.events_loaded == 1 and report.files_quarantined == 4 and report.metadata()["files_quarantined"] == 4
    text = report.describe()
    assert "4 quarantined" in text and f"{landing.resolve() / 'a.csv'}: quarantined, empty file" in text
    files = warehouse.execute("SELECT source_file, row_number, kind, severity FROM quarantine ORDER BY 1").fetchall()
    assert files == [(str((landing / n).resolve()), None, "file", "rejected")
                     for n in ("a.csv", "b.parquet", "c.ndjson", "d.csv")]
    # The next run reports them again, but records them once; a file that gets content loads.
    assert ingest(warehouse, config, landing).files_quarantined == 4 and count(warehouse, "quarantine") == 4
    write_csv(landing / "a.csv", EVENT_HEADER, [["e1"] + GOOD[1:]])
    assert ingest(warehouse, config, landing).events_loaded == 1


# --------------------------------------------------------------------------------------
# 6. readable errors
# --------------------------------------------------------------------------------------
def test_a_cr_only_csv_is_read(tmp_path, config, warehouse):
    path = tmp_path / "mac.csv"
    path.write_bytes(b"customer_id,occurred_at,event_type\rc1,2026-11-01,login\rc2,2026-11-02,login\r")
    report = ingest(warehouse, config, path)
    assert report.events_loaded == 2 and report.quarantined == 0


def test_a_ragged_row_names_expected_and_found_field_counts_once(tmp_path, config, warehouse):
    path = tmp_path / "e.csv"
    path.write_text("customer_id,occurred_at,event_type\nc1,2026-11-01,login,x,y,z\nc1\nc1,2026-11-01,login\n")
    report = ingest(warehouse, config, path)
    assert (report.events_loaded, report.quarantined) == (1, 2)
    reasons = [q["reason"] for q in quarantine(warehouse)]
    assert reasons == ["malformed CSV row: expected 3 fields, found 6", "malformed CSV row: expected 3 fields, found 1"]


def test_control_characters_in_columns_found_are_escaped(tmp_path, config, warehouse):
    path = tmp_path / "odd.csv"
    path.write_bytes(b"order_id,\x1b[31mred\x07,amount\n1,2,3\n")
    with pytest.raises(IngestError) as info:
        ingest(warehouse, config, path)
    message = str(info.value)
    assert "columns found: order_id, \\x1b[31mred\\x07, amount" in message
    assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in message)
    assert "\n" not in message

