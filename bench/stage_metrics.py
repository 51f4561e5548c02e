"""Benchmark stage ``metrics``: weekly and yearly period metrics vs a plain DuckDB scan.

Issue 3, item 7: on 1,000,000 customers / 50,000,000 events the weekly and the yearly
metrics must each finish within 5x the time of a plain DuckDB scan + group-by of the same
events, measured in the same run, with peak RSS <= 4 GB.

The bench framework calls :func:`run` in a subprocess after the ``ingest`` stage has built
``workdir/valuemail.duckdb``.  Run standalone, the stage builds a synthetic warehouse itself
(DuckDB ``range()`` + hashing, no Python loops)::

    uv run python -m bench.stage_metrics --customers 1000000 --events 50000000 --workdir /tmp/vm-bench

"The same events" = every event the metrics read: ``occurred_at`` before the end of the
period (the metrics need lifetime totals and streaks, so they read the whole history up to
the period end).  The plain baseline is ``SELECT customer_id, count(*), sum(quantity) ...
GROUP BY customer_id`` over exactly those rows into a temp table, best of two runs taken
just before and just after the metrics (the machine is shared: both wall and process CPU
seconds are reported; CPU is the steadier of the two).  A second baseline reading every
column the metrics read (``plain_full_columns_s``, measured the same way) is the fairer
"plain scan of the same events": the ratios are printed against both, labelled
``ratio_*`` (narrow: count + sum of quantity) and ``ratio_*_vs_full_columns``.
``customer_days_*_s`` times only the grouping of the period's events by (customer, day),
which active days and the busiest day cannot do without — a floor for any implementation.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import sys
import time
from datetime import date, datetime

import duckdb

NAME = "metrics"

_TYPES_WEIGHTED = (
    ["workflow_run"] * 10 + ["email_automated"] * 6 + ["report_generated"] * 2 + ["invoice_created"] * 2
    + ["data_sync"] * 4 + ["form_processed"] * 3 + ["approval_routed"] * 2 + ["meeting_scheduled"] * 2
    + ["lead_enriched"] * 3 + ["document_signed"] * 2 + ["file_converted"] * 2 + ["reminder_sent"] * 4
    + ["ticket_triaged"] * 2 + ["payment_reconciled"] * 1 + ["duplicate_removed"] * 1
    + ["subscription_audit"] * 1 + ["workflow_created"] * 1 + ["integration_connected"] * 1 + ["login"] * 8
)
_HISTORY_END = datetime(2026, 11, 23)  # a Monday: the last complete week is 2026-11-16
_HISTORY_DAYS = 730
# DuckDB's buffer limit for the stage; the process peak RSS must stay <= 4 GB.
MEMORY_LIMIT = "2.5GB"


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def build_synthetic(con: duckdb.DuckDBPyConnection, customers: int, events: int, seed: int) -> None:
    """A synthetic ``customers`` + ``events`` pair in the warehouse schema, set-based.

    Events are laid out in time order (as an append-only ingest produces them), customers are
    picked with a skew (heavy users exist), ~0.1 % have an unknown type, ~5 % quantity > 1,
    ~10 % a measured duration, ``subscription_audit`` a measured amount in the customer's
    currency (and 1 in 10 of those in another currency).
    """
    from valuemail.warehouse import ensure_schema

    ensure_schema(con)
    types = "[" + ", ".join(f"'{t}'" for t in _TYPES_WEIGHTED) + "]"
    ntypes = len(_TYPES_WEIGHTED)
    span_us = _HISTORY_DAYS * 86_400 * 1_000_000
    start = f"TIMESTAMP '{_HISTORY_END.isoformat(sep=' ')}' - INTERVAL {_HISTORY_DAYS} DAY"
    con.execute("DELETE FROM customers")
    con.execute("DELETE FROM events")
    con.execute(
        f"""
        INSERT INTO customers
        SELECT 'cus_' || lpad(CAST(i AS VARCHAR), 7, '0'),
               'user' || i || '@company' || (i % 50000) || '.example',
               'User ' || i, 'en', 'UTC',
               (['free', 'starter', 'pro', 'business'])[1 + (hash(i, {seed}, 1) % 4)::INT],
               'US',
               {start} + to_microseconds(CAST((hash(i, {seed}, 2) % 1000000) AS BIGINT) * {span_us // 1_000_000}),
               NULL,
               CASE WHEN hash(i, {seed}, 3) % 5 = 0 THEN 40 + (hash(i, {seed}, 4) % 80) END,
               (['USD', 'USD', 'USD', 'EUR', 'EUR', 'HUF', 'CNY', NULL])[1 + (hash(i, {seed}, 5) % 8)::INT],
               'synthetic', now()
        FROM range(1, {customers} + 1) t(i)
        """
    )
    con.execute(
        f"""
        INSERT INTO events
        WITH r AS (
            SELECT i, hash(i, {seed}) AS h1, hash(i, {seed}, 7) AS h2,
                   1 + CAST(floor({customers} * pow((hash(i, {seed}, 9) % 1000003) / 1000003.0, 1.6)) AS BIGINT) AS c
            FROM range({events}) t(i)
        ), t AS (
            SELECT *, CASE WHEN h1 % 1000 = 0 THEN 'beta_feature_used'
                           ELSE ({types})[1 + (h2 % {ntypes})::INT] END AS event_type
            FROM r
        )
        SELECT 'evt_' || i,
               'cus_' || lpad(CAST(c AS VARCHAR), 7, '0'),
               {start} + to_microseconds(CAST(i * ({span_us} / {events}) + (h1 % 3600000000) AS BIGINT)),
               event_type,
               CASE WHEN h2 % 20 = 0 THEN 2 + (h1 % 4) ELSE 1 END,
               CASE WHEN h1 % 10 = 1 THEN CAST(30 + (h2 % 900) AS DOUBLE) END,
               CASE WHEN event_type = 'subscription_audit' THEN CAST((h1 % 100000) / 100.0 AS DECIMAL(18, 4)) END,
               CASE WHEN event_type = 'subscription_audit'
                    THEN CASE WHEN h2 % 10 = 0 THEN 'EUR'
                              ELSE coalesce((['USD', 'USD', 'USD', 'EUR', 'EUR', 'HUF', 'CNY', NULL])[1 + (hash(c, {seed}, 5) % 8)::INT], 'USD') END END,
               NULL,
               event_type <> 'beta_feature_used',
               'synthetic', now()
        FROM t
        """
    )


def _timed(fn) -> tuple[float, float, object]:
    """(wall s, process CPU s over all threads, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def run(workdir: pathlib.Path, customers: int, events: int, seed: int) -> dict:
    """Time weekly + yearly metrics against a plain scan + group-by of the same events."""
    from metrics.period import compute_period_metrics
    from valuemail.config import load_config
    from valuemail.periods import Period, period_start

    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "valuemail.duckdb"
    con = duckdb.connect(str(db))
    for setting in ("SET preserve_insertion_order = false", f"SET memory_limit = '{MEMORY_LIMIT}'",
                    f"SET temp_directory = '{workdir / 'duckdb_tmp'}'", "SET enable_progress_bar = false"):
        con.execute(setting)
    has_events = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'events'"
    ).fetchone()[0] and con.execute("SELECT count(*) > 0 FROM events").fetchone()[0]
    build_s = 0.0
    if not has_events:
        build_s, _, _ = _timed(lambda: (build_synthetic(con, customers, events, seed), con.execute("CHECKPOINT")))
    n_events, n_customers, max_ts = con.execute(
        "SELECT count(*), count(DISTINCT customer_id), max(occurred_at) FROM events"
    ).fetchone()

    config = load_config(home=workdir)
    last_day = max_ts.date()
    week = Period("weekly", period_start("weekly", last_day)).previous()   # the last complete week
    year = Period("yearly", period_start("yearly", last_day))             # the year of the latest events

    def plain(period: Period, columns: str) -> tuple[float, float]:
        wall, cpu, _ = _timed(lambda: con.execute(
            f"CREATE OR REPLACE TEMP TABLE _plain AS SELECT customer_id, {columns} "
            "FROM events WHERE occurred_at < ? GROUP BY customer_id", [period.end_ts]))
        con.execute("DROP TABLE _plain")
        return wall, cpu

    narrow = "count(*) AS n, sum(quantity) AS q"
    # The same columns the metrics read, still one plain aggregate each.
    full = ("count(*) AS n, sum(quantity) AS q, sum(duration_saved_s) AS d, sum(amount_saved) AS a, "
            "max(event_type) AS t, max(currency) AS c, min(occurred_at) AS f")
    def customer_days(period: Period) -> tuple[float, float]:
        """Only grouping the period's events by (customer, UTC day), nothing computed: the least
        any implementation of active days and the busiest day (issue 3, item 2) must do."""
        def once() -> tuple[float, float]:
            wall, cpu, _ = _timed(lambda: con.execute(
                "CREATE OR REPLACE TEMP TABLE _plain AS SELECT customer_id, CAST(occurred_at AS DATE) AS day, count(*) AS n "
                "FROM events WHERE occurred_at >= ? AND occurred_at < ? GROUP BY ALL", [period.start_ts, period.end_ts]))
            con.execute("DROP TABLE _plain")
            return wall, cpu
        return min(once(), once())

    results: dict = {}
    for label, period in (("weekly", week), ("yearly", year)):
        plain(period, narrow)  # warm the cache: both sides then read from memory
        p1 = plain(period, narrow)
        wall, cpu, summary = _timed(lambda: compute_period_metrics(con, config, period))
        p2 = plain(period, narrow)
        pf = min(plain(period, full), plain(period, full))
        days_floor = customer_days(period)
        best_plain = min(p1, p2)  # the plain scan's best of two, measured around the metrics
        results[label] = {
            "period": period.key, "rows": summary.rows, "wall_s": wall, "cpu_s": cpu,
            "plain_wall_s": best_plain[0], "plain_cpu_s": best_plain[1],
            "plain_full_wall_s": pf[0], "plain_full_cpu_s": pf[1], "customer_days_wall_s": days_floor[0], "steps_s": summary.timings_s, "steps_cpu_s": summary.cpu_s,
        }
    con.close()
    w, y = results["weekly"], results["yearly"]
    steps = lambda d: ", ".join(f"{k} {v:.2f}" for k, v in d.items())  # noqa: E731
    return {
        "seconds": round(w["wall_s"] + y["wall_s"], 3),
        "events": int(n_events),
        "customers_with_events": int(n_customers),
        "build_s": round(build_s, 2),
        "weekly_period": w["period"],
        "yearly_period": y["period"],
        **_comparisons("weekly", w),
        **_comparisons("yearly", y),
        "weekly_rows": w["rows"],
        "yearly_rows": y["rows"],
        "weekly_steps_s": steps(w["steps_s"]),
        "yearly_steps_s": steps(y["steps_s"]),
        "weekly_steps_cpu_s": steps(w["steps_cpu_s"]),
        "yearly_steps_cpu_s": steps(y["steps_cpu_s"]),
        "peak_rss_mb": round(_rss_peak_mb(), 1),
    }


def _comparisons(label: str, r: dict) -> dict:
    """One period's time next to each baseline, and the ratios (wall and process CPU)."""
    sfx = "" if label == "weekly" else "_yearly"   # the weekly baselines keep their original names
    figures = {f"{label}_s": round(r["wall_s"], 3), f"{label}_cpu_s": round(r["cpu_s"], 3)}
    # (baseline key, baseline seconds, ratio key, seconds compared with it)
    for key, base, ratio, measured in (
        (f"plain_scan{sfx}_s", r["plain_wall_s"], f"ratio_{label}", r["wall_s"]),
        (f"plain_cpu{sfx}_s", r["plain_cpu_s"], f"ratio_{label}_cpu", r["cpu_s"]),
        (f"plain_full_columns{sfx}_s", r["plain_full_wall_s"], f"ratio_{label}_vs_full_columns", r["wall_s"]),
        (f"plain_full_columns_cpu{sfx}_s", r["plain_full_cpu_s"], f"ratio_{label}_cpu_vs_full_columns", r["cpu_s"]),
        # The (customer, day) grouping alone against the narrow plain scan: when this ratio is
        # already above 5, no implementation that reports active days meets a 5x target.
        (f"customer_days_{label}_s", r["customer_days_wall_s"], f"ratio_customer_days_{label}", None),
    ):
        figures[key] = round(base, 3)
        figures[ratio] = round(base / r["plain_wall_s"] if measured is None else measured / base, 2)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("data/bench"))
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    result = run(args.workdir, args.customers, args.events, args.seed)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
