"""The main job end to end, as a newcomer runs it: sample data → DuckDB → emails → outbox → report."""

import email
import subprocess
import sys
from email import policy
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipelines.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("end_to_end")]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    result = CliRunner().invoke(main, ["--home", str(home), "run", "--sample-customers", "300"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return home, result.output


def test_empty_home_gets_sample_data_and_says_so(first_run):
    home, output = first_run
    assert "is empty: writing 300 sample customers" in output
    assert any((home / "landing").iterdir())


def test_report_names_counts_reasons_and_where_to_look(first_run):
    home, output = first_run
    assert "events" in output and "customers" in output
    assert "quarantine" in output and "eligibility" in output
    assert "inactive_in_period" in output  # sample data has inactive customers, and they are named
    assert str(home / "outbox") in output


def test_every_customer_has_exactly_one_decision_and_inactive_ones_get_nothing(first_run):
    home, _ = first_run
    with duckdb.connect(str(home / "valuemail.duckdb"), read_only=True) as con:
        customers = con.execute("SELECT count(*) FROM customers").fetchone()[0]
        (campaign, period, decisions, distinct) = con.execute(
            "SELECT any_value(campaign), any_value(period), count(*), count(DISTINCT customer_id) FROM eligibility"
        ).fetchone()
        assert decisions == distinct  # one decision per customer
        assert 0 < decisions <= customers
        sent = {r[0] for r in con.execute("SELECT customer_id FROM outbox WHERE status = 'sent'").fetchall()}
        to_send = {r[0] for r in con.execute("SELECT customer_id FROM eligibility WHERE reason = 'send'").fetchall()}
        inactive = {r[0] for r in con.execute(
            "SELECT customer_id FROM eligibility WHERE reason = 'inactive_in_period'").fetchall()}
    assert sent and sent == to_send
    assert inactive and not (inactive & sent)
    files = sorted((home / "outbox" / campaign / period.isoformat()).glob("*.eml"))
    assert len(files) == len(sent)
    msg = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert msg.get_body(("plain",)) is not None and msg.get_body(("html",)) is not None


def test_running_the_same_period_again_sends_nothing_twice(first_run):
    home, _ = first_run
    with duckdb.connect(str(home / "valuemail.duckdb"), read_only=True) as con:
        period = con.execute("SELECT any_value(period) FROM eligibility").fetchone()[0].isoformat()
        before = con.execute("SELECT count(*), max(updated_at) FROM outbox WHERE status = 'sent'").fetchone()
    result = CliRunner().invoke(main, ["--home", str(home), "run", "--period", period], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(home / "valuemail.duckdb"), read_only=True) as con:
        after = con.execute("SELECT count(*), max(updated_at) FROM outbox WHERE status = 'sent'").fetchone()
        attempts = con.execute("SELECT max(attempts) FROM outbox").fetchone()[0]
    assert after == before and attempts == 1


def test_the_installed_command_runs(tmp_path):
    exe = Path(sys.executable).parent / "valuemail"
    out = subprocess.run([str(exe), "--home", str(tmp_path), "--help"], capture_output=True, text=True, check=True)
    assert "--home" in out.stdout and "VALUEMAIL_HOME" in out.stdout
