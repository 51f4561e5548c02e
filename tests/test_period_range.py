"""The seams of time, through the command: a year to date judged as of its cut-off, partitions from
``[schedules] first_period``, and a one-line error for a period outside them (issues #11, #12)."""

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipelines.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("period_range")]

VALUEMAIL = str(Path(sys.executable).parent / "valuemail")


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("command", [
    ("run", "--campaign", "weekly", "--period", "9999-12-27"),
    ("run", "--campaign", "yearly", "--period", "0001-01-01"),
    ("run", "--campaign", "monthly", "--period", "2023-12-01"),
    ("backfill", "--campaign", "weekly", "--from", "1997-01-06", "--to", "2024-01-08"),
    ("backfill", "--campaign", "weekly", "--from", "2026-11-02", "--to", "9999-12-27"),
    ("explain", "c-1", "--campaign", "weekly", "--period", "9999-12-27"),
    ("preview", "c-1", "--campaign", "weekly", "--period", "0001-01-01"),
])
def test_a_period_outside_the_partitions_is_a_one_line_error(tmp_path, command):
    result = _cli("--home", tmp_path, *command)
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)  # a clean exit, no traceback
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert "periods run from 2024-01-01 to" in errors[0] and "[schedules] first_period" in errors[0]
    assert not (tmp_path / "landing").exists()  # refused before anything was written


def test_as_of_in_the_future_is_refused(tmp_path):
    result = _cli("--home", tmp_path, "run", "--campaign", "yearly", "--period", "2026-01-01", "--as-of", "9999-01-01")
    assert result.exit_code != 0 and "--as-of 9999-01-01 is after today" in result.output


def test_the_wrapped_sent_on_1_december_covers_the_year_to_30_november(tmp_path):
    """Issue #12 item 1: November's customers were skipped as lapsed "36 days before 2027-01-01"."""
    home = tmp_path / "home"
    assert _cli("sample-data", "--customers", "150", "--seed", "12", "--end-date", "2026-12-02",
                "--out", home / "landing").exit_code == 0
    result = _cli("--home", home, "run", "--campaign", "yearly", "--period", "2026-01-01", "--as-of", "2026-12-01")
    assert result.exit_code == 0, result.output
    assert "measured up to 2026-12-01" in result.output and "(until 2026-12-01, exclusive)" in result.output
    with duckdb.connect(str(home / "valuemail.duckdb"), read_only=True) as con:
        assert con.execute("SELECT DISTINCT CAST(as_of AS VARCHAR) FROM segments").fetchall() == [("2026-12-01 00:00:00",)]
        lapsed_in_november = con.execute(
            "SELECT count(*) FROM segments WHERE last_active_at >= TIMESTAMP '2026-11-01' AND stage IN ('lapsed', 'churned')"
        ).fetchone()[0]
        after_cutoff = con.execute("SELECT count(*) FROM events WHERE occurred_at >= TIMESTAMP '2026-12-01'").fetchone()[0]
        measured = con.execute("SELECT sum(events) FROM customer_metrics WHERE campaign = 'yearly'").fetchone()[0]
        in_window = con.execute("SELECT count(*) FROM events WHERE occurred_at >= TIMESTAMP '2026-01-01' "
                                "AND occurred_at < TIMESTAMP '2026-12-01'").fetchone()[0]
        emails = con.execute("SELECT customer_id, text_path FROM emails WHERE locale_used = 'en'").fetchall()
    text_paths = [path for _customer, path in emails]
    assert lapsed_in_november == 0
    assert after_cutoff > 0 and measured == in_window
    assert text_paths and all("Jan 1\u2009–\u2009Nov 30, 2026 so far" in Path(p).read_text() for p in text_paths)
    # a preview days later names the dates its figures cover, not the day it is made
    preview = _cli("--home", home, "preview", emails[0][0], "--campaign", "yearly", "--period", "2026",
                   "--out", tmp_path / "preview", "--no-screenshot")
    assert preview.exit_code == 0, preview.output
    [text] = (tmp_path / "preview").glob("*.txt")
    assert "Jan 1\u2009–\u2009Nov 30, 2026 so far" in text.read_text()


def test_older_history_runs_once_first_period_says_so(tmp_path):
    """Issue #12 item 3: a period before 2024 was a DagsterUnknownPartitionError traceback."""
    home, config = tmp_path / "home", tmp_path / "older.toml"
    config.write_text('[schedules]\nfirst_period = "2023-06-01"\n')
    generate = [VALUEMAIL, "sample-data", "--customers", "60", "--end-date", "2024-01-10", "--out", str(home / "landing")]
    subprocess.run(generate, check=True, capture_output=True)
    run = [VALUEMAIL, "--home", str(home), "--config", str(config), "run", "--campaign", "monthly", "--period", "2023-12-01"]
    done = subprocess.run(run, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "monthly e-mail for the period starting 2023-12-01" in done.stdout
    earlier = subprocess.run(run[:-1] + ["2023-05-01"], capture_output=True, text=True, timeout=600)
    assert earlier.returncode != 0 and "Traceback" not in earlier.stderr
    assert "the monthly periods run from 2023-06-01 to" in earlier.stderr
