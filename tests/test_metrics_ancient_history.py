"""One event dated 0001-01-01 (or 1990) must not make the metrics cost grow with the years since.

The streak needs the weeks back to the first week without any event at all, not every week
since the oldest timestamp (issue #11, 4a: 21 GB RSS / 20+ minutes for one such event).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Customers with a 3-week streak, a 70-week streak (two 64-week chunks), and one with a gap; one
# of them also has the ancient event (events before ingest.earliest_timestamp can still be in a
# warehouse filled before that rule, or by hand).
SCRIPT = textwrap.dedent("""
    import json, sys
    from datetime import date, datetime, timedelta
    from metrics import testing as T
    from metrics.period import compute_period_metrics
    from valuemail.periods import Period

    con = T.warehouse()
    for c in ("a", "long", "gap"):
        T.add_customer(con, c)
    for w in range(3):
        T.add_event(con, "a", datetime(2026, 11, 16, 10) - timedelta(weeks=w))
    for w in range(70):
        T.add_event(con, "long", datetime(2026, 11, 22, 23) - timedelta(weeks=w))
    T.add_event(con, "gap", "2026-11-02 10:00:00")
    T.add_event(con, "gap", "2026-11-18 10:00:00")
    for when in sys.argv[1:]:
        T.add_event(con, "a", when)
    cfg = T.config(sys.argv[0] + ".home", metrics={"duckdb_memory_limit": "300MB"})
    out = {}
    for period in (Period("weekly", date(2026, 11, 16)), Period("monthly", date(2026, 11, 1))):
        compute_period_metrics(con, cfg, period)
        out[period.campaign] = T.rows(con, "SELECT customer_id, streak_weeks, longest_streak_weeks, active_weeks, "
                                           "lifetime_tasks FROM customer_metrics WHERE campaign = ? ORDER BY 1",
                                      [period.campaign])
    print(json.dumps(out, default=str))
""")


def _limit_memory() -> None:
    limit = 3 << 30   # address space: the old code needed ~21 GB RSS for one ancient event
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _metrics(tmp_path: Path, *extra_events: str) -> dict:
    script = tmp_path / "ancient.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), *extra_events], cwd=REPO, capture_output=True, text=True,
                          timeout=90, preexec_fn=_limit_memory)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_ancient_events_do_not_blow_up_metrics_and_change_only_lifetime_totals(tmp_path):
    normal = _metrics(tmp_path)
    ancient = _metrics(tmp_path, "0001-01-01 00:00:00", "1677-09-22 00:00:00", "1990-01-01 00:00:00")
    for campaign in ("weekly", "monthly"):
        for before, after in zip(normal[campaign], ancient[campaign]):
            extra = 3 if before["customer_id"] == "a" else 0
            assert after == {**before, "lifetime_tasks": before["lifetime_tasks"] + extra}
    assert {r["customer_id"]: r["streak_weeks"] for r in normal["weekly"]} == {"a": 3, "gap": 1, "long": 70}
