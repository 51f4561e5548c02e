"""Per-customer metrics for one campaign period, computed set-based in DuckDB.

``compute_period_metrics(con, config, period)`` (re)writes the period's rows of
``customer_metrics`` and ``peer_distribution`` in one transaction (delete-then-insert), so
re-running or backfilling a period always gives the same rows.  Every definition (what a
task is, how minutes and money are counted and rounded, streaks, milestones, percentiles)
is documented in ``metrics/README.md``.

How it runs — each step is one set-based DuckDB statement into a narrow temp table, then one
INSERT assembles the rows (sizes for 1M customers / 50M events over two years):

1. ``_m_life``  every event *before* the period, per customer (1M groups): totals before the
   period (lifetime = before + this period), a bit mask of active Monday-weeks (streaks) and
   of event types used before (first uses); for yearly also the previous period (FILTERs).
   ``_m_prev`` the previous period per customer (its own small pass for weekly / monthly).
2. ``_m_cur``   the period's events per customer: totals, the daily (weekly / monthly) or
   monthly (yearly) series as ``sum(CASE ...)`` per day / month, per-day minutes (weekly /
   monthly), active weeks, a day bit mask (active days) and event types.  ``_m_types``
   per-task-type counts in a second pass (one pass with dozens of aggregate states spills at
   1M customers), and ``_m_top`` the top three of them (packed integer keys, three
   ``greatest()`` layers).
3. ``_m_days``  busiest day (most tasks) and biggest day (most minutes saved): weekly / monthly
   from the per-day sums of ``_m_cur``; yearly from one (customer, day) aggregate of the
   events that carry a value, the costliest step (~24M groups for 36M events).
4. ``_m_first`` first-ever use of task types new in this period (only customers that have one),
   already as its JSON text (written from the sorted list's positions, no lambda per row).
5. ``_m_meas`` / ``_m_money`` measured ``amount_saved`` per currency (its own currency),
   for customers that have any; per-unit defaults (value-model currency) come from ``_m_cur``.
6. ``_m_peer`` / ``_m_rank_*`` per cohort and value, how many active customers have strictly
   fewer tasks / minutes (a running sum over the distinct values, not a sort of every row).
7. one INSERT joins them; ``peer_distribution`` is counted from the inserted rows.  Writing the
   ~50 columns costs about 1 CPU s per 800k rows even for a single non-NULL column, so the
   INSERT is kept free of per-row lambdas (the peer bucket is a CASE ladder).

Each event is valued by a join with the ~20-row value model; measured values win over the
per-unit defaults; unknown event types are counted, never valued.  No step materialises a
(customer x day) grid, lists of structs, or ORDER BY inside an aggregate (all slow in DuckDB at
a million groups): series are sums of CASE expressions, rankings are packed integers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

import duckdb

from metrics import peers
from metrics.settings import MetricsSettings
from metrics.sqlutil import (
    DAY_US,
    UBIGINT_ALL_ONES,
    date_lit,
    drop_temp,
    duckdb_settings,
    ensure_table,
    ident,
    mask_bit_sql,
    minutes_sql,
    str_lit,
    time_value_sql,
    trailing_ones_sql,
    ts_lit,
    week_index,
    week_sql,
    with_longest_run,
)
from metrics.value_model import VM_TEMP, register_value_model, sync_value_model
from valuemail.config import Config, ConfigError
from valuemail.periods import Period
from valuemail.warehouse import transaction

TABLE = "customer_metrics"

# (column, type) — the public contract; see metrics/README.md for every definition.
COLUMNS: list[tuple[str, str]] = [
    ("campaign", "VARCHAR NOT NULL"),
    ("period", "DATE NOT NULL"),
    ("customer_id", "VARCHAR NOT NULL"),
    ("value_model_version", "VARCHAR NOT NULL"),
    ("tasks", "BIGINT NOT NULL"),
    ("minutes_saved", "DECIMAL(18, 2) NOT NULL"),
    ("money_saved", "DECIMAL(18, 2) NOT NULL"),
    ("currency", "VARCHAR NOT NULL"),
    ("money_direct", "DECIMAL(18, 2)"),
    ("money_from_time", "DECIMAL(18, 2)"),
    ("hourly_rate", "DECIMAL(18, 4)"),
    ("money_other", "JSON"),
    ("events", "BIGINT NOT NULL"),
    ("unknown_events", "BIGINT"),
    ("measured_events", "BIGINT"),
    ("active_days", "INTEGER NOT NULL"),
    ("active_weeks", "INTEGER"),
    ("first_event_at", "TIMESTAMP"),
    ("last_event_at", "TIMESTAMP"),
    ("first_event_before_signup", "BOOLEAN"),
    ("daily_tasks", "BIGINT[]"),
    ("monthly_tasks", "BIGINT[]"),
    ("busiest_day", "DATE"),
    ("busiest_day_tasks", "BIGINT"),
    ("biggest_day", "DATE"),
    ("biggest_day_minutes", "DECIMAL(18, 2)"),
    ("top_features", "JSON"),
    ("features_used", "INTEGER"),
    ("first_uses", "JSON"),
    ("prev_tasks", "BIGINT"),
    ("prev_minutes_saved", "DECIMAL(18, 2)"),
    ("prev_money_saved", "DECIMAL(18, 2)"),
    ("tasks_change_pct", "DOUBLE"),
    ("minutes_change_pct", "DOUBLE"),
    ("lifetime_tasks", "BIGINT"),
    ("lifetime_minutes_saved", "DECIMAL(18, 2)"),
    ("milestones", "BIGINT[]"),
    ("next_milestone", "BIGINT"),
    ("streak_weeks", "INTEGER"),
    ("longest_streak_weeks", "INTEGER"),
    ("peer_cohort", "VARCHAR"),
    ("peer_cohort_size", "INTEGER"),
    ("tasks_percentile", "DOUBLE"),
    ("minutes_percentile", "DOUBLE"),
    ("tasks_beat_pct", "INTEGER"),
    ("minutes_beat_pct", "INTEGER"),
    ("tasks_bucket", "INTEGER"),
    ("minutes_bucket", "INTEGER"),
    ("peer_phrase", "VARCHAR"),
]
COLUMN_NAMES = [c for c, _ in COLUMNS]
PRIMARY_KEY = ("campaign", "period", "customer_id")

_TEMPS = ("_m_cust", "_m_life", "_m_prev", "_m_cur", "_m_types", "_m_top", "_m_days", "_m_new", "_m_first", "_m_meas", "_m_money", "_m_peer",
          "_m_rank_t", "_m_rank_m")

# Per-row valuation of an event against the value model (``v`` = the joined _m_vm row, NULL
# for an unknown type).  Measured values win over per-unit defaults; unknown types are
# counted as events but valued at zero.  s4 = 1/10,000 s, m4 = 1/10,000 currency unit.
_TASKS = "CASE WHEN v.task THEN e.quantity ELSE 0 END"
_S4 = (
    "CASE WHEN v.idx IS NULL THEN 0 "
    "WHEN e.duration_saved_s IS NOT NULL THEN CAST(round(e.duration_saved_s * 10000) AS BIGINT) "
    "ELSE e.quantity * v.s4_per_unit END"
)
_DEFAULT_M4 = "CASE WHEN v.idx IS NOT NULL AND e.amount_saved IS NULL THEN e.quantity * v.m4_per_unit ELSE 0 END"
_MEASURED = "(v.idx IS NOT NULL AND (e.duration_saved_s IS NOT NULL OR e.amount_saved IS NOT NULL))"


def _streak_sql(chunks: list[str]) -> str:
    """Trailing 1 bits of a multi-chunk UBIGINT bit mask (chunk 0 = the lowest 64 bits)."""
    return " + ".join(
        "(" + " * ".join([f"(CASE WHEN {chunks[i]} = {UBIGINT_ALL_ONES} THEN 1 ELSE 0 END)" for i in range(j)]
                         + [trailing_ones_sql(chunks[j])]) + ")"
        for j in range(len(chunks))
    )


# Streak masks of up to this many weeks are built without looking for the first inactive week.
_STREAK_WEEKS_UNCHECKED = 256


def _streak_mask_weeks(con: duckdb.DuckDBPyConnection, last_week: int, end: str) -> int:
    """The highest week (counted back from the period's last, 0) the streak bit masks must hold.

    No customer's streak reaches past a week in which nobody did anything, so the masks end at
    the first such week after week 0, however old the oldest event is (one event dated
    0001-01-01 otherwise meant ~1,650 64-bit chunks per customer, and a quadratic streak
    expression).  Histories up to _STREAK_WEEKS_UNCHECKED weeks skip that search (one scan).
    """
    first_ts = con.execute(f"SELECT min(occurred_at) FROM events WHERE occurred_at < {end}").fetchone()[0]
    oldest = last_week - week_index(first_ts.date()) if first_ts is not None else 0
    if oldest < _STREAK_WEEKS_UNCHECKED:
        return max(oldest, 0)
    active = {r[0] for r in con.execute(
        f"SELECT DISTINCT {last_week} - {week_sql('occurred_at')} FROM events WHERE occurred_at < {end}").fetchall()}
    quiet = 1
    while quiet in active:
        quiet += 1
    return quiet


def _cents_sql(m4: str) -> str:
    """Non-negative integer 1/10,000 units -> DECIMAL(18,2), half up."""
    return f"CAST(CAST((CAST({m4} AS HUGEINT) + 50) // 100 AS DECIMAL(18, 0)) * CAST(0.01 AS DECIMAL(3, 2)) AS DECIMAL(18, 2))"


@dataclass(frozen=True)
class MetricsSummary:
    """What a materialisation wrote, for logs and Dagster metadata."""

    campaign: str
    period: str
    rows: int
    tasks: int
    minutes_saved: float
    events: int
    unknown_events: int = 0
    unknown_event_types: dict[str, int] = field(default_factory=dict)
    customers_compared: int = 0
    cohorts: dict[str, int] = field(default_factory=dict)  # cohort -> active customers (all cohorts)
    cohorts_compared: int = 0
    money_by_currency: dict[str, str] = field(default_factory=dict)
    value_model_version: str = ""
    timings_s: dict[str, float] = field(default_factory=dict)  # wall seconds per step
    cpu_s: dict[str, float] = field(default_factory=dict)      # process CPU seconds per step (all threads)


def ensure_metrics_tables(con: duckdb.DuckDBPyConnection) -> None:
    ensure_table(con, TABLE, COLUMNS, PRIMARY_KEY)
    ensure_table(con, peers.TABLE, peers.COLUMNS, peers.PRIMARY_KEY)


def _cohort_sql(con: duckdb.DuckDBPyConnection, columns: tuple[str, ...]) -> str:
    existing = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers' AND table_schema = 'main'"
    ).fetchall()}
    missing = [c for c in columns if c not in existing]
    if missing:
        raise ConfigError(f"segments.peer_cohort_columns: customers has no column {', '.join(missing)}")
    parts = [f"NULLIF(trim(CAST({ident(c)} AS VARCHAR)), '')" for c in columns]
    all_present = " AND ".join(f"{p} IS NOT NULL" for p in parts)
    return f"CASE WHEN {all_present} THEN concat_ws(' · ', {', '.join(parts)}) END"


def compute_period_metrics(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    period: Period,
    progress: Callable[[str], None] | None = None,
) -> MetricsSummary:
    """(Re)compute ``customer_metrics`` and ``peer_distribution`` for ``period``.

    Reads ``events`` and ``customers``; writes the period's rows of both tables in one
    transaction (delete-then-insert), so a crash leaves the previous rows in place and a
    re-run gives identical rows.  Returns a :class:`MetricsSummary`.
    """
    settings = MetricsSettings.from_config(config)
    model = config.value_model
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    clock, cpu_clock = time.perf_counter(), time.process_time()

    def lap(name: str) -> None:
        nonlocal clock, cpu_clock
        now, cpu_now = time.perf_counter(), time.process_time()
        timings[name], cpu[name] = round(now - clock, 3), round(cpu_now - cpu_clock, 3)
        clock, cpu_clock = now, cpu_now
        say(f"metrics {period}: {name} {timings[name]:.2f}s (cpu {cpu[name]:.2f}s)")

    ensure_metrics_tables(con)
    with duckdb_settings(con, settings.duckdb_memory_limit):
        try:
            insert_sql = _build(con, config, settings, period, lap)
            with transaction(con):
                sync_value_model(con, model)
                con.execute(f"DELETE FROM {TABLE} WHERE campaign = ? AND period = ?", [period.campaign, period.start])
                con.execute(f"DELETE FROM {peers.TABLE} WHERE campaign = ? AND period = ?", [period.campaign, period.start])
                con.execute(insert_sql)
                peers.write_distribution(con, period, settings, src=TABLE)
            lap("write")
            summary = _summarise(con, period, model.version, settings)
            lap("summary")
            summary = MetricsSummary(**{**summary.__dict__, "timings_s": timings, "cpu_s": cpu})
        finally:
            drop_temp(con, *_TEMPS)
    return summary


def _build(con: duckdb.DuckDBPyConnection, config: Config, settings: MetricsSettings, period: Period,
           lap: Callable[[str], None]) -> str:
    """Build the temp tables; return the INSERT that assembles the period's rows from them."""
    model = config.value_model
    n_types = register_value_model(con, model)
    if n_types > 1024:
        raise ConfigError(f"value_model.events: {n_types} event types; metrics support at most 1024")
    vm = con.execute(f"SELECT idx, event_type, feature, task FROM {VM_TEMP} ORDER BY idx").fetchall()
    task_idx = [i for i, _t, _f, task in vm if task]
    # Measured up to the cut-off (as_of) when the period has not ended; the previous period is
    # cut at the same point ([PS, PE)), so a year to date meets last year to the same date.
    n_days = (period.as_of - period.start).days
    S, E = ts_lit(period.start_ts), ts_lit(period.as_of_ts)
    PS, PE = ts_lit(period.previous().start_ts), ts_lit(period.previous_as_of)
    vm_cur = str_lit(model.currency)
    last_week = week_index(period.as_of - timedelta(days=1))
    period_weeks = last_week - week_index(period.start) + 1  # Monday weeks overlapping the period (<= 54)
    start_us = (period.start_ts - datetime(1970, 1, 1)) // timedelta(microseconds=1)
    price_time = "true" if model.price_time_at_hourly_rate else "false"
    type_chunks = max(1, (n_types - 1) // 64 + 1)
    rw = f"({last_week} - {week_sql('e.occurred_at')})"

    # -- 0. customers: display currency, hourly rate (when pricing time), peer cohort ----------
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _m_cust AS
        SELECT customer_id, signed_up_at,
               upper(coalesce(NULLIF(trim(currency), ''), {vm_cur})) AS display_currency,
               CASE WHEN {price_time} AND hourly_rate > 0 THEN CAST(hourly_rate AS DECIMAL(18, 4)) END AS hourly_rate,
               {_cohort_sql(con, settings.peer_cohort_columns)} AS peer_cohort
        FROM customers
        """
    )
    lap("customers")

    # -- 1. history: every event before the period, per customer --------------------------------
    week_chunks = _streak_mask_weeks(con, last_week, E) // 64 + 1
    week_masks = ", ".join(f"bit_or({mask_bit_sql('rw', 64 * j)}) AS w{j}" for j in range(week_chunks))
    type_masks = ", ".join(f"bit_or({mask_bit_sql('idx', 64 * j)}) AS tb{j}" for j in range(type_chunks))
    # The previous period: inline FILTERs when it is a large share of the history (yearly),
    # else its own small pass (zone maps skip the rest), which keeps the big scan lean.
    prev_inline = period.campaign == "yearly"
    prev_aggs = (
        "count(*) FILTER (WHERE prev) AS n_prev, coalesce(sum(tq) FILTER (WHERE prev), 0) AS t_prev, "
        "coalesce(sum(s4) FILTER (WHERE prev), 0) AS s_prev, coalesce(sum(m4) FILTER (WHERE prev), 0) AS m_prev,"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _m_life AS
        WITH x AS (
            SELECT e.customer_id, e.occurred_at >= {PS} AND e.occurred_at < {PE} AS prev, v.idx,
                   {_TASKS} AS tq, {_S4} AS s4, {_DEFAULT_M4 if prev_inline else "0"} AS m4, {rw} AS rw
            FROM events e LEFT JOIN {VM_TEMP} v ON v.event_type = e.event_type
            WHERE e.occurred_at < {S}
        )
        SELECT customer_id,
               {prev_aggs if prev_inline else ""}
               sum(tq) AS t_before,
               sum(s4) AS s_before,
               {week_masks},
               {type_masks}
        FROM x
        GROUP BY customer_id
        """
    )
    if prev_inline:
        con.execute("CREATE OR REPLACE TEMP TABLE _m_prev AS SELECT customer_id, n_prev, t_prev, s_prev, m_prev "
                    "FROM _m_life WHERE n_prev > 0")
    else:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _m_prev AS
            SELECT e.customer_id, count(*) AS n_prev, sum({_TASKS}) AS t_prev, sum({_S4}) AS s_prev,
                   sum({_DEFAULT_M4}) AS m_prev
            FROM events e LEFT JOIN {VM_TEMP} v ON v.event_type = e.event_type
            WHERE e.occurred_at >= {PS} AND e.occurred_at < {PE}
            GROUP BY e.customer_id
            """
        )
    lap("history")

    # -- 2. the period, per customer ----------------------------------------------------------
    day_idx = f"CAST((epoch_us(e.occurred_at) - {start_us}) // {DAY_US} AS INTEGER)"
    if period.campaign == "yearly":
        daily = daily_s4 = "CAST(NULL AS BIGINT[])"
        monthly = "[" + ", ".join(f"sum(CASE WHEN mon = {m} THEN tq ELSE 0 END)" for m in range(1, 13)) + "]"
    else:
        daily = "[" + ", ".join(f"sum(CASE WHEN d = {k} THEN tq ELSE 0 END)" for k in range(n_days)) + "]"
        daily_s4 = "[" + ", ".join(f"sum(CASE WHEN d = {k} THEN s4 ELSE 0 END)" for k in range(n_days)) + "]"
        monthly = "CAST(NULL AS BIGINT[])"
    # Active days: one bit per day of the period (366 days = 6 chunks of 64), counted once.
    active_days = " + ".join(f"CAST(bit_count(bit_or({mask_bit_sql('d', 64 * j)})) AS INTEGER)" for j in range((n_days - 1) // 64 + 1))
    per_type = "".join(f", CAST(sum(CASE WHEN v.idx = {i} THEN e.quantity ELSE 0 END) AS BIGINT) AS ft{i}" for i in task_idx)
    type_used = ", ".join(f"bit_or({mask_bit_sql('idx', 64 * j)}) AS tp{j}" for j in range(type_chunks))
    period_mask = (1 << period_weeks) - 1
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _m_cur AS
        WITH x AS (
            SELECT e.customer_id, e.occurred_at, v.idx, {day_idx} AS d, month(e.occurred_at) AS mon,
                   {_TASKS} AS tq, {_S4} AS s4, {_DEFAULT_M4} AS m4, {_MEASURED} AS measured, {rw} AS rw
            FROM events e LEFT JOIN {VM_TEMP} v ON v.event_type = e.event_type
            WHERE e.occurred_at >= {S} AND e.occurred_at < {E}
        )
        SELECT customer_id,
               count(*) AS n, count(*) - count(idx) AS unknown, count(*) FILTER (WHERE measured) AS measured,
               sum(tq) AS tq, sum(s4) AS s4, sum(m4) AS m4,
               min(occurred_at) AS first_at, max(occurred_at) AS last_at,
               bit_or({mask_bit_sql('rw', 0)}) & CAST({period_mask} AS UBIGINT) AS cw,
               {type_used},
               CAST({active_days} AS INTEGER) AS active_days,
               {daily} AS daily_tasks,
               {daily_s4} AS daily_s4,
               {monthly} AS monthly_tasks
        FROM x
        GROUP BY customer_id
        """
    )
    con.execute(f"ALTER TABLE _m_cur ADD COLUMN minutes_saved DECIMAL(18, 2)")
    con.execute(f"UPDATE _m_cur SET minutes_saved = {minutes_sql('s4')}")
    # Per-task-type counts in their own pass: dozens of aggregate states in one hash table
    # outgrow the memory limit at a million customers and spill (3x slower than two passes).
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _m_types AS
        SELECT e.customer_id {per_type}
        FROM events e JOIN {VM_TEMP} v ON v.event_type = e.event_type
        WHERE e.occurred_at >= {S} AND e.occurred_at < {E} AND v.task
        GROUP BY e.customer_id
        """
    )
    # Top 3 features: one packed key per task type, tasks * 1024 + (1023 - idx), so the largest
    # key is the most tasks and, on a tie, the alphabetically first event type.  Three layers of
    # greatest() instead of sorting a list per customer (3x cheaper at a million rows).
    names = {i: (t, f) for i, t, f, _task in vm}
    prefixes = "[" + ", ".join(
        str_lit(json.dumps({"event_type": names[i][0], "feature": names[i][1]}, ensure_ascii=False, separators=(",", ":"))[:-1])
        for i in range(n_types)) + "]"
    if task_idx:
        keys = ", ".join(f"ft{i} * 1024 + {1023 - i} AS k{i}" for i in task_idx)
        used = " + ".join(f"CASE WHEN ft{i} > 0 THEN 1 ELSE 0 END" for i in task_idx)
        q = f"(SELECT customer_id, {keys}, {used} AS features_used FROM _m_types)"
        q = f"(SELECT *, greatest({', '.join(f'k{i}' for i in task_idx)}) AS t1 FROM {q})"
        q = f"(SELECT *, greatest({', '.join(f'CASE WHEN k{i} < t1 THEN k{i} END' for i in task_idx)}) AS t2 FROM {q})"
        q = f"(SELECT *, greatest({', '.join(f'CASE WHEN k{i} < t2 THEN k{i} END' for i in task_idx)}) AS t3 FROM {q})"
        frag = lambda t: (f"CASE WHEN {t} >= 1024 THEN {prefixes}[CAST(1024 - {t} % 1024 AS BIGINT)] || ',\"tasks\":' "
                          f"|| CAST({t} // 1024 AS VARCHAR) || '}}' END")
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _m_top AS
            SELECT customer_id, CAST(features_used AS INTEGER) AS features_used,
                   '[' || concat_ws(',', {frag('t1')}, {frag('t2')}, {frag('t3')}) || ']' AS top_features
            FROM {q}
            """
        )
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _m_top AS SELECT customer_id, 0 AS features_used, '[]' AS top_features "
                    "FROM _m_types")
    lap("period")

    # -- 3. busiest day (most tasks) and biggest day (most minutes saved) ----------------------
    # max(tasks * 1024 + (1023 - day)) = the day with most tasks, the earliest on a tie; a key
    # below 1024 (no day with tasks) means none.  Weekly / monthly: from the per-day sums _m_cur
    # already has.  Yearly: one (customer, day) aggregate of the events that carry a value (a
    # day without tasks or minutes can never win), ~24M groups for 36M events, the costliest step.
    if period.campaign == "yearly":
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _m_days AS
            WITH d0 AS (
                SELECT e.customer_id, {day_idx} AS d, sum({_TASKS}) AS tq, sum({_S4}) AS s4
                FROM events e JOIN {VM_TEMP} v ON v.event_type = e.event_type
                WHERE e.occurred_at >= {S} AND e.occurred_at < {E} AND ({_TASKS} <> 0 OR {_S4} <> 0)
                GROUP BY ALL
            )
            SELECT customer_id, max(tq * 1024 + (1023 - d)) AS kt, max(s4 * 1024 + (1023 - d)) AS ks
            FROM d0 GROUP BY customer_id
            """
        )
    else:
        kt = "greatest(" + ", ".join(f"daily_tasks[{k + 1}] * 1024 + {1023 - k}" for k in range(n_days)) + ")"
        ks = "greatest(" + ", ".join(f"daily_s4[{k + 1}] * 1024 + {1023 - k}" for k in range(n_days)) + ")"
        con.execute(f"CREATE OR REPLACE TEMP TABLE _m_days AS SELECT customer_id, {kt} AS kt, {ks} AS ks FROM _m_cur")
    lap("days")

    # -- 4. first-ever use of the event types new in this period --------------------------------
    new_masks = ", ".join(
        f"coalesce(c.tp{j}, CAST(0 AS UBIGINT)) & ~coalesce(l.tb{j}, CAST(0 AS UBIGINT)) AS n{j}" for j in range(type_chunks))
    any_new = " OR ".join(f"n{j} <> 0" for j in range(type_chunks))
    is_new = " OR ".join(
        f"(v.idx >= {64 * j} AND v.idx < {64 * (j + 1)} AND ((n.n{j} >> CAST(v.idx - {64 * j} AS UBIGINT)) & CAST(1 AS UBIGINT)) = 1)"
        for j in range(type_chunks))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _m_new AS
        SELECT * FROM (SELECT c.customer_id, {new_masks} FROM _m_cur c LEFT JOIN _m_life l USING (customer_id))
        WHERE {any_new}
        """
    )
    # Each customer's new task types as packed keys (first use << 10) + idx, sorted = time order;
    # the JSON is written from the list's positions (at most one per task type), not by a lambda
    # per element (the lambda cost more than the whole first-use pass).
    first_frag = lambda p: (f"{prefixes}[CAST(({p} & 1023) + 1 AS BIGINT)] || ',\"first_used_at\":\"' "
                            f"|| strftime(make_timestamp({p} >> 10), '%Y-%m-%dT%H:%M:%SZ') || '\"}}'")
    first_json = ("'[' || concat_ws(',', " + ", ".join(first_frag(f"firsts[{k}]") for k in range(1, len(task_idx) + 1))
                  + ") || ']'") if task_idx else "'[]'"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _m_first AS
        WITH firsts AS (
            SELECT e.customer_id, v.idx, min(e.occurred_at) AS first_at
            FROM events e
            JOIN {VM_TEMP} v ON v.event_type = e.event_type
            JOIN _m_new n ON n.customer_id = e.customer_id
            WHERE e.occurred_at >= {S} AND e.occurred_at < {E} AND v.task AND ({is_new})
            GROUP BY ALL
        )
        SELECT customer_id, {first_json} AS first_uses
        FROM (SELECT customer_id, list_sort(list((epoch_us(first_at) << 10) + idx)) AS firsts FROM firsts GROUP BY customer_id)
        """
    )
    lap("first_uses")

    # -- 5. money: measured amounts per currency, then the display-currency split ---------------
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _m_meas AS
        SELECT e.customer_id, e.occurred_at >= {S} AS cur,
               upper(coalesce(NULLIF(trim(e.currency), ''), {vm_cur})) AS currency,
               CAST(sum(e.amount_saved) * 10000 AS HUGEINT) AS m4
        FROM events e
        WHERE e.amount_saved IS NOT NULL AND e.occurred_at >= {PS} AND e.occurred_at < {E}
          AND NOT (e.occurred_at >= {PE} AND e.occurred_at < {S})
          AND e.event_type IN (SELECT event_type FROM {VM_TEMP})
        GROUP BY ALL
        """
    )
    # Only customers with a measured amount need this table; the common case (per-unit
    # defaults only) is computed inline in the INSERT.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _m_money AS
        SELECT m.customer_id,
               sum(m.m4) FILTER (WHERE m.cur AND m.currency = d.currency) AS meas_d_cur,
               sum(m.m4) FILTER (WHERE NOT m.cur AND m.currency = d.currency) AS meas_d_prev,
               sum(m.m4) FILTER (WHERE m.cur AND m.currency = {vm_cur} AND d.currency <> {vm_cur}) AS meas_vm_cur,
               list({{'currency': m.currency, 'm4': m.m4}})
                   FILTER (WHERE m.cur AND m.currency <> d.currency AND m.currency <> {vm_cur}) AS others
        FROM _m_meas m
        JOIN (SELECT c.customer_id, coalesce(cu.display_currency, {vm_cur}) AS currency
              FROM _m_cur c LEFT JOIN _m_cust cu USING (customer_id)) d USING (customer_id)
        GROUP BY m.customer_id
        """
    )
    lap("money")

    # -- 6. peers: per cohort and value, how many active customers have strictly less ----------
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _m_peer AS
        SELECT cu.peer_cohort, CAST(c.tq AS BIGINT) AS tasks, c.minutes_saved
        FROM _m_cur c JOIN _m_cust cu USING (customer_id)
        WHERE cu.peer_cohort IS NOT NULL
        """
    )
    for name, col in (("_m_rank_t", "tasks"), ("_m_rank_m", "minutes_saved")):
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {name} AS
            SELECT peer_cohort, {col},
                   sum(n) OVER (PARTITION BY peer_cohort ORDER BY {col} ROWS UNBOUNDED PRECEDING) - n AS below,
                   sum(n) OVER (PARTITION BY peer_cohort) AS size
            FROM (SELECT peer_cohort, {col}, count(*) AS n FROM _m_peer GROUP BY ALL)
            """
        )
    lap("peers")

    # -- 7. the INSERT that assembles one row per active customer ---------------------------------
    chunks = ["(coalesce(l.w0, CAST(0 AS UBIGINT)) | c.cw)"] + [
        f"coalesce(l.w{j}, CAST(0 AS UBIGINT))" for j in range(1, week_chunks)]
    streak = _streak_sql(chunks)
    if period.as_of.weekday() != 0:
        # The period ends mid-week: a last week with no activity *yet* does not break the streak;
        # count from the week before instead (bits shifted by one across the chunks).
        shifted = [f"(({chunks[j]} >> 1) | ((({chunks[j + 1]}) & CAST(1 AS UBIGINT)) << 63))" for j in range(len(chunks) - 1)]
        shifted.append(f"({chunks[-1]} >> 1)")
        streak = f"CASE WHEN ({chunks[0]} & CAST(1 AS UBIGINT)) = 1 THEN {streak} ELSE {_streak_sql(shifted)} END"
    t_life, s_life = "(c.tq + coalesce(l.t_before, 0))", "(c.s4 + coalesce(l.s_before, 0))"
    crossed = "list_sort(list_distinct([" + ", ".join(
        f"CASE WHEN {m} > {t_life} - c.tq AND {m} <= {t_life} THEN {m} END" for m in settings.milestones) + "]))"
    upcoming = "least(" + ", ".join(f"CASE WHEN {m} > {t_life} THEN {m} END" for m in settings.milestones) + ")"
    has_prev = "coalesce(pv.n_prev, 0) > 0"
    k = int(settings.peer_min_cohort)
    display = f"coalesce(cu.display_currency, {vm_cur})"
    direct = _cents_sql(f"coalesce(mo.meas_d_cur, 0) + CASE WHEN {display} = {vm_cur} THEN c.m4 ELSE 0 END")
    vm_other = f"(c.m4 + coalesce(mo.meas_vm_cur, 0))"
    money_other = (
        f"CASE WHEN mo.customer_id IS NULL AND ({display} = {vm_cur} OR (c.m4 + 50) // 100 = 0) THEN '[]' "
        f"ELSE to_json(list_sort(list_concat("
        f"CASE WHEN {display} <> {vm_cur} AND ({vm_other} + 50) // 100 <> 0 "
        f"THEN [{{'currency': {vm_cur}, 'amount': CAST({_cents_sql(vm_other)} AS VARCHAR)}}] ELSE [] END, "
        f"list_transform(list_filter(coalesce(mo.others, []), lambda o: (o.m4 + 50) // 100 <> 0), "
        f"lambda o: {{'currency': o.currency, 'amount': CAST({_cents_sql('o.m4')} AS VARCHAR)}}))))::VARCHAR END"
    )
    from_time = f"CASE WHEN cu.hourly_rate IS NOT NULL THEN {time_value_sql('c.s4', 'cu.hourly_rate')} END"
    prev_direct = _cents_sql(f"coalesce(mo.meas_d_prev, 0) + CASE WHEN {display} = {vm_cur} THEN pv.m_prev ELSE 0 END")
    prev_time = f"CASE WHEN cu.hourly_rate IS NOT NULL THEN {time_value_sql('pv.s_prev', 'cu.hourly_rate')} END"
    ok = f"coalesce(rt.size >= {k}, false)"
    cols = ", ".join(ident(c) for c in COLUMN_NAMES)
    return f"""
        INSERT INTO {TABLE} ({cols})
        SELECT {str_lit(period.campaign)} AS campaign,
               {date_lit(period.start)} AS period,
               c.customer_id,
               {str_lit(model.version)} AS value_model_version,
               CAST(c.tq AS BIGINT) AS tasks,
               c.minutes_saved,
               {direct} + coalesce({from_time}, 0) AS money_saved,
               coalesce(cu.display_currency, {vm_cur}) AS currency,
               {direct} AS money_direct,
               {from_time} AS money_from_time,
               cu.hourly_rate,
               CAST({money_other} AS JSON) AS money_other,
               c.n AS events,
               c.unknown AS unknown_events,
               c.measured AS measured_events,
               c.active_days,
               CAST(bit_count(c.cw) AS INTEGER) AS active_weeks,
               c.first_at AS first_event_at,
               c.last_at AS last_event_at,
               CASE WHEN cu.signed_up_at IS NOT NULL THEN c.first_at < cu.signed_up_at END AS first_event_before_signup,
               CAST(c.daily_tasks AS BIGINT[]) AS daily_tasks,
               CAST(c.monthly_tasks AS BIGINT[]) AS monthly_tasks,
               CASE WHEN dy.kt >= 1024 THEN CAST({date_lit(period.start)} + CAST(1023 - dy.kt % 1024 AS INTEGER) AS DATE) END
                 AS busiest_day,
               CASE WHEN dy.kt >= 1024 THEN dy.kt // 1024 END AS busiest_day_tasks,
               CASE WHEN dy.ks >= 1024 THEN CAST({date_lit(period.start)} + CAST(1023 - dy.ks % 1024 AS INTEGER) AS DATE) END
                 AS biggest_day,
               CASE WHEN dy.ks >= 1024 THEN {minutes_sql('dy.ks // 1024')} END AS biggest_day_minutes,
               CAST(coalesce(tp.top_features, '[]') AS JSON) AS top_features,
               coalesce(tp.features_used, 0) AS features_used,
               CAST(coalesce(f.first_uses, '[]') AS JSON) AS first_uses,
               CASE WHEN {has_prev} THEN CAST(pv.t_prev AS BIGINT) END AS prev_tasks,
               CASE WHEN {has_prev} THEN {minutes_sql('pv.s_prev')} END AS prev_minutes_saved,
               CASE WHEN {has_prev} THEN {prev_direct} + coalesce({prev_time}, 0) END AS prev_money_saved,
               CASE WHEN {has_prev} AND pv.t_prev > 0 THEN (c.tq - pv.t_prev) * 100.0 / pv.t_prev END AS tasks_change_pct,
               CASE WHEN {has_prev} AND pv.s_prev > 0 THEN (c.s4 - pv.s_prev) * 100.0 / pv.s_prev END AS minutes_change_pct,
               CAST({t_life} AS BIGINT) AS lifetime_tasks,
               {minutes_sql(s_life)} AS lifetime_minutes_saved,
               CAST({crossed} AS BIGINT[]) AS milestones,
               CAST({upcoming} AS BIGINT) AS next_milestone,
               CAST({streak} AS INTEGER) AS streak_weeks,
               CAST(c._longest AS INTEGER) AS longest_streak_weeks,
               cu.peer_cohort,
               CAST(rt.size AS INTEGER) AS peer_cohort_size,
               CASE WHEN {ok} THEN 100.0 * rt.below / (rt.size - 1) END AS tasks_percentile,
               CASE WHEN {ok} THEN 100.0 * rm.below / (rt.size - 1) END AS minutes_percentile,
               CASE WHEN {ok} THEN CAST((100 * rt.below) // (rt.size - 1) AS INTEGER) END AS tasks_beat_pct,
               CASE WHEN {ok} THEN CAST((100 * rm.below) // (rt.size - 1) AS INTEGER) END AS minutes_beat_pct,
               CASE WHEN {ok} THEN {peers.bucket_sql('c.tq')} END AS tasks_bucket,
               CASE WHEN {ok} THEN {peers.bucket_sql('c.minutes_saved')} END AS minutes_bucket,
               CASE WHEN {ok} THEN format('more tasks than {{}}% of {{}} users', CAST((100 * rt.below) // (rt.size - 1) AS INTEGER),
                                          upper(left(cu.peer_cohort, 1)) || substr(cu.peer_cohort, 2)) END AS peer_phrase
        FROM {with_longest_run('_m_cur', 'cw', '_longest')} c
        LEFT JOIN _m_days dy USING (customer_id)
        LEFT JOIN _m_top tp USING (customer_id)
        LEFT JOIN _m_life l USING (customer_id)
        LEFT JOIN _m_prev pv USING (customer_id)
        LEFT JOIN _m_cust cu USING (customer_id)
        LEFT JOIN _m_first f USING (customer_id)
        LEFT JOIN _m_money mo USING (customer_id)
        LEFT JOIN _m_rank_t rt ON rt.peer_cohort = cu.peer_cohort AND rt.tasks = c.tq
        LEFT JOIN _m_rank_m rm ON rm.peer_cohort = cu.peer_cohort AND rm.minutes_saved = c.minutes_saved
    """


def _summarise(con: duckdb.DuckDBPyConnection, period: Period, version: str, settings: MetricsSettings) -> MetricsSummary:
    rows, tasks, minutes, events, unknown, compared = con.execute(
        f"SELECT count(*), coalesce(sum(tasks), 0), coalesce(sum(minutes_saved), 0), coalesce(sum(events), 0), "
        f"coalesce(sum(unknown_events), 0), count(tasks_percentile) FROM {TABLE} WHERE campaign = ? AND period = ?",
        [period.campaign, period.start],
    ).fetchone()
    unknown_types = dict(con.execute(
        f"SELECT event_type, count(*) FROM events WHERE occurred_at >= ? AND occurred_at < ? "
        f"AND event_type NOT IN (SELECT event_type FROM {VM_TEMP}) GROUP BY event_type ORDER BY 2 DESC, 1",
        [period.start_ts, period.as_of_ts],
    ).fetchall()) if unknown else {}
    cohorts = dict(con.execute(
        f"SELECT coalesce(peer_cohort, '(none)'), count(*) FROM {TABLE} WHERE campaign = ? AND period = ? "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
        [period.campaign, period.start],
    ).fetchall())
    money = {cur: str(amount) for cur, amount in con.execute(
        f"SELECT currency, sum(money_saved) FROM {TABLE} WHERE campaign = ? AND period = ? GROUP BY 1 ORDER BY 1",
        [period.campaign, period.start],
    ).fetchall()}
    return MetricsSummary(
        campaign=period.campaign,
        period=period.key,
        rows=int(rows),
        tasks=int(tasks),
        minutes_saved=float(minutes),
        events=int(events),
        unknown_events=int(unknown),
        unknown_event_types={k: int(v) for k, v in unknown_types.items()},
        customers_compared=int(compared),
        cohorts={k: int(v) for k, v in cohorts.items()},
        cohorts_compared=sum(1 for k, v in cohorts.items() if k != "(none)" and v >= settings.peer_min_cohort),
        money_by_currency=money,
        value_model_version=version,
    )
