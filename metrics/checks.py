"""Data-quality checks on a period's metrics — pure functions the Dagster asset checks call.

Each returns a :class:`CheckOutcome`; the asset checks are *blocking*, so a failure stops the
e-mails of that period from being rendered or sent.  The reconciliation recomputes the totals
from the raw events with deliberately naive SQL (one row at a time, DECIMAL arithmetic, the
persisted ``value_model`` table) — a second, independent implementation of the value model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import duckdb

from metrics.settings import MetricsSettings
from valuemail.config import Config
from valuemail.periods import Period


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict = field(default_factory=dict)


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'", [name]
    ).fetchone()[0])


def check_no_negative_values(con: duckdb.DuckDBPyConnection, period: Period) -> CheckOutcome:
    """No negative count, minute or amount anywhere; percentiles within [0, 100]; raw inputs sane."""
    bad_rows = con.execute(
        """
        SELECT count(*) FILTER (WHERE tasks < 0 OR events < 1 OR unknown_events < 0 OR active_days < 1
                                   OR minutes_saved < 0 OR money_saved < 0 OR money_direct < 0
                                   OR coalesce(money_from_time, 0) < 0 OR lifetime_tasks < tasks
                                   OR lifetime_minutes_saved < minutes_saved OR coalesce(prev_tasks, 0) < 0
                                   OR coalesce(prev_minutes_saved, 0) < 0 OR coalesce(prev_money_saved, 0) < 0
                                   OR streak_weeks < 0),
               count(*) FILTER (WHERE tasks_percentile < 0 OR tasks_percentile > 100
                                   OR minutes_percentile < 0 OR minutes_percentile > 100),
               count(*) FILTER (WHERE EXISTS (SELECT 1 FROM unnest(CAST(money_other AS JSON[])) AS u(j)
                                              WHERE CAST(j ->> 'amount' AS DECIMAL(18, 2)) < 0))
        FROM customer_metrics WHERE campaign = ? AND period = ?
        """,
        [period.campaign, period.start],
    ).fetchone()
    bad_events = con.execute(
        "SELECT count(*) FROM events WHERE occurred_at >= ? AND occurred_at < ? "
        "AND (quantity < 0 OR duration_saved_s < 0 OR amount_saved < 0)",
        [period.start_ts, period.as_of_ts],
    ).fetchone()[0]
    meta = {"rows_with_negative_values": int(bad_rows[0]), "percentiles_out_of_range": int(bad_rows[1]),
            "negative_other_currency_amounts": int(bad_rows[2]), "raw_events_with_negative_values": int(bad_events)}
    passed = not any(meta.values())
    return CheckOutcome(passed, "no negative values" if passed else f"negative or out-of-range values: {meta}", meta)


def check_every_active_customer_has_row(con: duckdb.DuckDBPyConnection, period: Period) -> CheckOutcome:
    """Exactly one row per customer with >= 1 event in the period — none missing, none extra."""
    missing, extra, duplicates, active = con.execute(
        """
        WITH a AS (SELECT DISTINCT customer_id FROM events WHERE occurred_at >= $s AND occurred_at < $e),
             m AS (SELECT customer_id FROM customer_metrics WHERE campaign = $c AND period = $p)
        SELECT (SELECT count(*) FROM a ANTI JOIN m USING (customer_id)),
               (SELECT count(*) FROM m ANTI JOIN a USING (customer_id)),
               (SELECT count(*) - count(DISTINCT customer_id) FROM m),
               (SELECT count(*) FROM a)
        """,
        {"s": period.start_ts, "e": period.as_of_ts, "c": period.campaign, "p": period.start},
    ).fetchone()
    meta = {"active_customers": int(active), "missing_rows": int(missing), "rows_without_events": int(extra),
            "duplicate_rows": int(duplicates)}
    passed = not (missing or extra or duplicates)
    return CheckOutcome(passed, f"{active} active customers, one row each" if passed
                        else f"rows do not match active customers: {meta}", meta)


def check_totals_reconcile(con: duckdb.DuckDBPyConnection, config: Config, period: Period) -> CheckOutcome:
    """Tasks, events and unknown events equal the raw events exactly; minutes and money per
    currency equal the raw, unrounded totals within the rounding of the rows (0.005 each)."""
    model = config.value_model
    raw = con.execute(
        """
        SELECT count(*), count(*) FILTER (WHERE vm.event_type IS NULL),
               coalesce(sum(CASE WHEN vm.task THEN e.quantity ELSE 0 END), 0),
               coalesce(sum(CASE WHEN vm.event_type IS NULL THEN 0
                                 WHEN e.duration_saved_s IS NOT NULL THEN CAST(e.duration_saved_s AS DECIMAL(38, 6)) / 60
                                 ELSE e.quantity * vm.minutes_per_unit END), 0)
        FROM events e
        LEFT JOIN value_model vm ON vm.event_type = e.event_type AND vm.version = $v
        WHERE e.occurred_at >= $s AND e.occurred_at < $e
        """,
        {"v": model.version, "s": period.start_ts, "e": period.as_of_ts},
    ).fetchone()
    raw_money = dict(con.execute(
        """
        SELECT currency, sum(amount) FROM (
            SELECT CASE WHEN e.amount_saved IS NOT NULL THEN upper(coalesce(NULLIF(trim(e.currency), ''), $cur))
                        ELSE $cur END AS currency,
                   CASE WHEN e.amount_saved IS NOT NULL THEN e.amount_saved ELSE e.quantity * vm.money_per_unit END AS amount
            FROM events e
            JOIN value_model vm ON vm.event_type = e.event_type AND vm.version = $v
            WHERE e.occurred_at >= $s AND e.occurred_at < $e
        ) GROUP BY currency HAVING sum(amount) <> 0
        """,
        {"v": model.version, "cur": model.currency, "s": period.start_ts, "e": period.as_of_ts},
    ).fetchall())
    got = con.execute(
        "SELECT count(*), coalesce(sum(events), 0), coalesce(sum(unknown_events), 0), coalesce(sum(tasks), 0), "
        "coalesce(sum(minutes_saved), 0) FROM customer_metrics WHERE campaign = ? AND period = ?",
        [period.campaign, period.start],
    ).fetchone()
    got_money: dict[str, Decimal] = {}
    entries: dict[str, int] = {}
    for currency, amount, n in con.execute(
        """
        SELECT currency, sum(amount), count(*) FROM (
            SELECT currency, money_direct AS amount FROM customer_metrics WHERE campaign = $c AND period = $p
            UNION ALL
            SELECT j ->> 'currency', CAST(j ->> 'amount' AS DECIMAL(18, 2))
            FROM customer_metrics, unnest(CAST(money_other AS JSON[])) AS u(j)
            WHERE campaign = $c AND period = $p
        ) GROUP BY currency
        """,
        {"c": period.campaign, "p": period.start},
    ).fetchall():
        entries[currency] = int(n)
        if amount:
            got_money[currency] = Decimal(amount)
    rows = int(got[0])
    minutes_tolerance = Decimal("0.005") * rows
    problems = []
    if int(got[1]) != int(raw[0]):
        problems.append(f"events {got[1]} != raw {raw[0]}")
    if int(got[2]) != int(raw[1]):
        problems.append(f"unknown events {got[2]} != raw {raw[1]}")
    if int(got[3]) != int(raw[2]):
        problems.append(f"tasks {got[3]} != raw {raw[2]}")
    minutes_diff = abs(Decimal(got[4]) - Decimal(raw[3]))
    if minutes_diff > minutes_tolerance:
        problems.append(f"minutes {got[4]} vs raw {raw[3]:.4f} (diff {minutes_diff:.4f} > {minutes_tolerance})")
    for currency in sorted(set(raw_money) | set(got_money)):
        diff = abs(got_money.get(currency, Decimal(0)) - Decimal(raw_money.get(currency, 0)))
        if diff > Decimal("0.005") * max(entries.get(currency, 0), 1):  # each amount shown is rounded once
            problems.append(f"money {currency} {got_money.get(currency, 0)} vs raw {raw_money.get(currency, 0)}")
    meta = {
        "events": int(raw[0]), "unknown_events": int(raw[1]), "tasks": int(raw[2]),
        "minutes_saved_raw": float(raw[3]), "minutes_saved_rows": float(got[4]),
        "money_raw": {k: str(v) for k, v in sorted(raw_money.items())},
        "money_rows": {k: str(v) for k, v in sorted(got_money.items())},
    }
    passed = not problems
    return CheckOutcome(passed, "totals reconcile with the raw events" if passed else "; ".join(problems), meta)


def check_peer_privacy(con: duckdb.DuckDBPyConnection, config: Config, period: Period) -> CheckOutcome:
    """Peer figures only for cohorts of at least k active customers; histograms add up."""
    k = MetricsSettings.from_config(config).peer_min_cohort
    small_rows, small_dist, bad_sums = con.execute(
        f"""
        SELECT
          (SELECT count(*) FROM customer_metrics WHERE campaign = $c AND period = $p
             AND (tasks_percentile IS NOT NULL OR minutes_percentile IS NOT NULL OR peer_phrase IS NOT NULL
                  OR tasks_bucket IS NOT NULL) AND coalesce(peer_cohort_size, 0) < {int(k)}),
          (SELECT count(*) FROM peer_distribution WHERE campaign = $c AND period = $p AND cohort_size < {int(k)}),
          (SELECT count(*) FROM peer_distribution WHERE campaign = $c AND period = $p
             AND (list_sum(counts) <> cohort_size OR len(bucket_edges) <> len(counts) + 1))
        """,
        {"c": period.campaign, "p": period.start},
    ).fetchone()
    meta = {"k": int(k), "rows_compared_below_k": int(small_rows), "distributions_below_k": int(small_dist),
            "distributions_not_adding_up": int(bad_sums)}
    passed = not (small_rows or small_dist or bad_sums)
    return CheckOutcome(passed, f"peer figures only for cohorts >= {k}" if passed else f"peer privacy: {meta}", meta)


def check_segments_cover_customers(con: duckdb.DuckDBPyConnection, period: Period) -> CheckOutcome:
    """``segments`` has exactly one row per customer signed up before the period end."""
    if not _table_exists(con, "segments"):
        return CheckOutcome(False, "segments table does not exist", {})
    missing, extra, duplicates, bad_stage, bad_tier, total = con.execute(
        """
        WITH c AS (SELECT customer_id FROM customers WHERE signed_up_at < $e),
             s AS (SELECT * FROM segments WHERE campaign = $c AND period = $p)
        SELECT (SELECT count(*) FROM c ANTI JOIN s USING (customer_id)),
               (SELECT count(*) FROM s ANTI JOIN c USING (customer_id)),
               (SELECT count(*) - count(DISTINCT customer_id) FROM s),
               (SELECT count(*) FROM s WHERE stage NOT IN ('prospect', 'new', 'active', 'lapsed', 'churned', 'seasonal')),
               (SELECT count(*) FROM s WHERE tier NOT IN ('silent', 'opened', 'clicked', 'at_risk')),
               (SELECT count(*) FROM c)
        """,
        {"e": period.as_of_ts, "c": period.campaign, "p": period.start},
    ).fetchone()
    meta = {"customers": int(total), "missing_rows": int(missing), "extra_rows": int(extra),
            "duplicate_rows": int(duplicates), "unknown_stage": int(bad_stage), "unknown_tier": int(bad_tier)}
    passed = not (missing or extra or duplicates or bad_stage or bad_tier)
    return CheckOutcome(passed, f"{total} customers, one segment row each" if passed else f"segments: {meta}", meta)
