"""Two periods materialised at the same time never fail on DuckDB's single-writer lock."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("concurrency")]

VALUEMAIL = str(Path(sys.executable).parent / "valuemail")


def test_two_partitions_at_once_both_succeed(tmp_path):
    env = {**os.environ, "VALUEMAIL_HOME": str(tmp_path)}
    env.pop("DAGSTER_HOME", None)
    subprocess.run([VALUEMAIL, "sample-data", "--customers", "300", "--seed", "3", "--end-date", "2026-11-22"],
                   env=env, check=True, capture_output=True)
    runs = [
        subprocess.Popen([VALUEMAIL, "run", "--campaign", "weekly", "--period", period], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for period in ("2026-11-09", "2026-11-16")
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    for run, output in zip(runs, outputs):
        assert run.returncode == 0, output[-3000:]
    with duckdb.connect(str(tmp_path / "valuemail.duckdb"), read_only=True) as con:
        periods = {r[0].isoformat() for r in con.execute("SELECT DISTINCT period FROM eligibility").fetchall()}
        events = con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
    assert periods == {"2026-11-09", "2026-11-16"}
    assert events[0] == events[1]  # both runs ingested the same landing files: nothing twice
