"""Control characters from data never reach a terminal, a log line or a header as they are (issue #11, item 6)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_support import PERIOD, decide, make_home  # noqa: E402

from delivery.send import deliver_period  # noqa: E402
from pipelines.cli import main  # noqa: E402
from tests.pc_fixtures import live_centre  # noqa: E402
from valuemail.text import one_line, printable  # noqa: E402

EVIL = "Ann\x1b[31m\x07\tLee\r\nX-Forged: 1\u202e"


def _raw_controls(text: str) -> list[str]:
    return [ch for ch in text if (ord(ch) < 32 and ch != "\n") or 0x7f <= ord(ch) <= 0x9f or ch == "\u202e"]


def test_printable_and_one_line():
    assert printable(EVIL) == "Ann\\x1b[31m\\x07\\tLee\\r\\nX-Forged: 1\\u202e"
    assert one_line(EVIL) == "Ann [31m Lee X-Forged: 1"
    assert one_line("Ann  Lee") == "Ann  Lee"                       # names without controls are left alone


def test_explain_escapes_control_characters_from_data(tmp_path, monkeypatch):
    monkeypatch.setenv("VALUEMAIL_SECRET", "test-only-secret-not-for-production-0123456789")
    home = make_home(tmp_path, n=1)
    with home.con() as con:
        con.execute("UPDATE customers SET name = ?, plan = ? WHERE customer_id = 'c0000'", [EVIL, "pro\x1b[2J"])
    result = CliRunner().invoke(main, ["--home", str(home.path), "explain", "c0000", "--period", PERIOD.key],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert _raw_controls(result.output) == []
    assert "Ann\\x1b[31m\\x07\\tLee\\r\\nX-Forged: 1\\u202e" in result.output and "pro\\x1b[2J" in result.output


def test_a_control_character_in_a_name_is_not_a_send_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("VALUEMAIL_SECRET", "test-only-secret-not-for-production-0123456789")
    home = make_home(tmp_path, n=2)
    with home.con() as con:
        con.execute("UPDATE customers SET name = ? WHERE customer_id = 'c0000'", [EVIL])
        con.execute("UPDATE customers SET name = 'Bob\tSmith' WHERE customer_id = 'c0001'")
    decide(home)
    with home.con() as con:
        deliver_period(con, home.config, PERIOD)
        status = dict(con.execute("SELECT customer_id, status FROM outbox").fetchall())
    assert status == {"c0000": "sent", "c0001": "sent"}
    heads = [p.read_bytes().split(b"\r\n\r\n", 1)[0] for p in sorted((home.path / "outbox").rglob("*.eml"))]
    to = sorted(line for h in heads for line in h.split(b"\r\n") if line.startswith(b"To:"))
    assert to == [b'To: "Ann [31m Lee X-Forged: 1" <u0@acme.example>', b"To: Bob Smith <u1@acme.example>"]
    assert not any(line.startswith(b"X-Forged") for h in heads for line in h.split(b"\r\n"))


@pytest.mark.integration
def test_the_access_log_escapes_control_characters_in_the_path(tmp_path, caplog):
    with live_centre(tmp_path / "pc", [("c1", "en")]) as centre, caplog.at_level(logging.INFO, logger="preference_centre"):
        httpx.get(centre.url + "/static/%1b[31mred%07%0d%0a127.0.0.1 \"GET /forged\" 200", timeout=10)
        time.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if r.name == "preference_centre.access"]
    assert lines and all(_raw_controls(line) == [] and "\n" not in line for line in lines), lines
    assert any("/static/\\x1b[31mred\\x07\\r\\n127.0.0.1" in line for line in lines), lines


def test_preview_builds_the_message_of_a_name_with_a_tab(config, tmp_path):
    from tests.test_email_stage import WEEK, make_warehouse
    from valuemail.warehouse import connect

    with connect(config.warehouse_path) as con:
        make_warehouse(con)
        con.execute("UPDATE customers SET name = 'Agnes\tKovács' WHERE customer_id = 'c-agnes'")
    result = CliRunner().invoke(main, ["--home", str(config.home), "preview", "c-agnes", "--period", WEEK.key,
                                       "--out", str(tmp_path / "out"), "--no-screenshot"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert b"\t" not in (tmp_path / "out" / "c-agnes.eml").read_bytes().split(b"\r\n\r\n", 1)[0]


def test_ingest_errors_name_a_file_with_control_characters_escaped(tmp_path):
    odd = tmp_path / "orders\x07\r.csv"
    odd.write_text("order_id,amount\no1,5\n")
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), "ingest", str(odd)])
    assert result.exit_code != 0 and "orders\\x07\\r.csv" in result.output
    assert _raw_controls(result.output) == [] and "Traceback" not in result.output
