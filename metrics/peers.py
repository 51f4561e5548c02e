"""Peer comparisons: percentiles within a cohort and the cohort histogram ("you are here").

Definitions (see README):

* cohort = the customer's values of ``segments.peer_cohort_columns`` (default ``plan``),
  joined with `` · ``; a customer with a missing value (or no ``customers`` row) has none.
* The population is the cohort's customers *active in the period* (rows of
  ``customer_metrics``); ``peer_cohort_size`` is their number.
* Percentiles are only computed when ``peer_cohort_size >= k`` (``segments.peer_min_cohort``,
  default 50); below that every peer column is NULL.
* ``tasks_percentile`` = share of the *other* active customers of the cohort with strictly
  fewer tasks, in percent: ``100 * below / (size - 1)`` where ``below`` counts the cohort's
  customers with strictly fewer tasks (= SQL ``rank()`` - 1; ties share the value).  So it lies in [0, 100], is monotone
  in the metric, ties get the same value, and "more tasks than X% of Pro users" is true
  for ``X = tasks_beat_pct`` = the same value rounded *down* to an integer (exact integer
  arithmetic, never overstated).
* ``peer_distribution`` holds, per cohort >= k and metric, counts over fixed 1-2-5 bucket
  edges (0, 1, 2, 5, 10, 20, 50, ...) up to the bucket of the cohort's largest value.  The
  edges are constants, never a customer's value; no row exists for cohorts below k.
"""

from __future__ import annotations

import duckdb

from metrics.settings import MetricsSettings
from metrics.sqlutil import date_lit, str_lit
from valuemail.periods import Period

TABLE = "peer_distribution"
COLUMNS: list[tuple[str, str]] = [
    ("campaign", "VARCHAR NOT NULL"),
    ("period", "DATE NOT NULL"),
    ("cohort", "VARCHAR NOT NULL"),
    ("metric", "VARCHAR NOT NULL"),          # tasks | minutes_saved
    ("cohort_size", "INTEGER NOT NULL"),     # active customers in the cohort (>= k)
    ("bucket_edges", "DOUBLE[] NOT NULL"),   # n + 1 edges; bucket i = [edges[i], edges[i+1])
    ("counts", "BIGINT[] NOT NULL"),         # n counts
]
PRIMARY_KEY = ("campaign", "period", "cohort", "metric")
METRICS = ("tasks", "minutes_saved")


def bucket_edges(max_exponent: int = 12) -> list[float]:
    """0, 1, 2, 5, 10, 20, 50, ... 5 * 10**max_exponent."""
    edges = [0.0]
    for exp in range(max_exponent + 1):
        edges += [m * 10.0**exp for m in (1, 2, 5)]
    return edges


EDGES = bucket_edges()
_EDGES_SQL = "CAST([" + ", ".join(repr(e) for e in EDGES) + "] AS DOUBLE[])"


def bucket_of(value: float) -> int:
    """Python twin of the SQL bucket index (for tests and charts)."""
    return sum(1 for e in EDGES if e <= value) - 1


def bucket_sql(value: str) -> str:
    """SQL twin of :func:`bucket_of`: a CASE ladder (most values stop at the first rungs).

    Same result as counting the edges <= value (NULL and negative -> -1, NaN -> the last
    bucket), without a lambda over the edge list per row (~4x cheaper at a million rows).
    """
    x = f"CAST({value} AS DOUBLE)"
    rungs = " ".join(f"WHEN {x} < {edge!r} THEN {i - 1}" for i, edge in enumerate(EDGES))
    return f"CAST(CASE WHEN {x} IS NULL THEN -1 {rungs} ELSE {len(EDGES) - 1} END AS INTEGER)"


def write_distribution(con: duckdb.DuckDBPyConnection, period: Period, settings: MetricsSettings,
                       src: str = "customer_metrics") -> int:
    """Insert the period's ``peer_distribution`` rows (cohorts >= k only) from ``src``."""
    rows_before = con.execute(f"SELECT count(*) FROM {TABLE} WHERE campaign = ? AND period = ?", [period.campaign, period.start]).fetchone()[0]
    con.execute(
        f"""
        INSERT INTO {TABLE} (campaign, period, cohort, metric, cohort_size, bucket_edges, counts)
        WITH v AS (
            SELECT peer_cohort AS cohort, peer_cohort_size AS size, 'tasks' AS metric, tasks_bucket AS b
            FROM {src} WHERE campaign = {str_lit(period.campaign)} AND period = {date_lit(period.start)}
              AND tasks_bucket IS NOT NULL AND peer_cohort_size >= {int(settings.peer_min_cohort)}
            UNION ALL
            SELECT peer_cohort, peer_cohort_size, 'minutes_saved', minutes_bucket
            FROM {src} WHERE campaign = {str_lit(period.campaign)} AND period = {date_lit(period.start)}
              AND minutes_bucket IS NOT NULL AND peer_cohort_size >= {int(settings.peer_min_cohort)}
        ), c AS (
            SELECT cohort, metric, any_value(size) AS size, b, count(*) AS n FROM v GROUP BY cohort, metric, b
        ), l AS (
            SELECT cohort, metric, any_value(size) AS size, max(b) AS mb, list(b) AS bs, list(n) AS ns
            FROM c GROUP BY cohort, metric
        )
        SELECT {str_lit(period.campaign)}, {date_lit(period.start)}, cohort, metric, size,
               list_slice({_EDGES_SQL}, 1, mb + 2),
               list_transform(range(mb + 1), lambda i: coalesce(ns[list_position(bs, i)], 0))
        FROM l
        """
    )
    return con.execute(f"SELECT count(*) FROM {TABLE} WHERE campaign = ? AND period = ?", [period.campaign, period.start]).fetchone()[0] - rows_before
