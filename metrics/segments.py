"""Lifecycle stage and engagement tier of every customer, as of the end of a campaign period.

``compute_segments(con, config, period)`` (re)writes the period's rows of ``segments`` —
one per customer signed up before the period end — in one transaction (delete-then-insert).

Stage (first rule that matches, thresholds in ``[segments]``; ``as_of`` = the period end, or the
run's cut-off when the period had not ended by then — the wrapped sent on 1 December judges
the year as of 1 December, not 1 January):

=========  ==================================================================================
prospect   no event before ``as_of`` (signed up, never active)
new        signed up within ``new_days`` before ``as_of`` (and active at least once)
active     last event within ``active_days`` before ``as_of``
lapsed     last event ``active_days``..``lapsed_days`` before ``as_of`` (short-term lapsed)
seasonal   last event more than ``lapsed_days`` ago, but active in the same period last year
           (weekly: the week 52 weeks earlier; monthly: the same month; yearly: the year before)
churned    last event more than ``lapsed_days`` before ``as_of`` (long-term lapsed)
=========  ==================================================================================

"Seasonal" only takes customers who would otherwise be *churned*: a regular customer who
stopped five weeks ago was, of course, active a year ago too — that is a lapse, not a season.

Tier, from ``email_events`` before ``as_of`` (matched by ``customer_id``, or by e-mail address
when the engagement record has no customer id):

=========  ==================================================================================
at_risk    any complaint / unsubscribe (``segments.at_risk_events``) ever — no look-back: a
           complaint is never forgotten
clicked    a click within ``engagement_lookback_days`` (default 90)
opened     an open within the look-back
silent     none of the above
=========  ==================================================================================

``consecutive_unopened`` = value e-mails (``send``/``delivery`` rows with a campaign, counted
once per message) sent after the customer's last open or click — all history, no look-back —
which the delivery sunset rule reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import duckdb

from metrics.settings import MetricsSettings
from metrics.sqlutil import date_lit, duckdb_settings, ensure_table, ident, str_lit, ts_lit
from valuemail.config import Config
from valuemail.periods import Period
from valuemail.warehouse import transaction

TABLE = "segments"
STAGES = ("prospect", "new", "active", "lapsed", "seasonal", "churned")
TIERS = ("at_risk", "clicked", "opened", "silent")
DEFAULT_AT_RISK_EVENTS = ("complaint", "unsubscribe", "subscription")
SEND_EVENTS = ("send", "delivery")

COLUMNS: list[tuple[str, str]] = [
    ("campaign", "VARCHAR NOT NULL"),
    ("period", "DATE NOT NULL"),
    ("customer_id", "VARCHAR NOT NULL"),
    ("as_of", "TIMESTAMP NOT NULL"),              # the period end or the run's cut-off (exclusive), UTC
    ("stage", "VARCHAR NOT NULL"),                # prospect | new | active | lapsed | seasonal | churned
    ("tier", "VARCHAR NOT NULL"),                 # at_risk | clicked | opened | silent
    ("signed_up_at", "TIMESTAMP NOT NULL"),
    ("first_active_at", "TIMESTAMP"),             # first event ever (before as_of); NULL: never
    ("last_active_at", "TIMESTAMP"),              # last event before as_of
    ("days_since_signup", "INTEGER NOT NULL"),    # whole days from signed_up_at to as_of
    ("days_since_active", "INTEGER"),             # whole days from last_active_at to as_of
    ("active_in_period", "BOOLEAN NOT NULL"),
    ("active_same_period_last_year", "BOOLEAN NOT NULL"),
    ("last_sent_at", "TIMESTAMP"),                # last value e-mail send/delivery
    ("last_open_at", "TIMESTAMP"),
    ("last_click_at", "TIMESTAMP"),
    ("at_risk_at", "TIMESTAMP"),                  # last complaint / unsubscribe
    ("at_risk_event", "VARCHAR"),
    ("value_emails_sent", "INTEGER NOT NULL"),    # distinct value e-mails ever sent (before as_of)
    ("consecutive_unopened", "INTEGER NOT NULL"), # value e-mails sent since the last open or click
    ("stage_reason", "VARCHAR NOT NULL"),
    ("tier_reason", "VARCHAR NOT NULL"),
    ("reason", "VARCHAR NOT NULL"),
]
COLUMN_NAMES = [c for c, _ in COLUMNS]
PRIMARY_KEY = ("campaign", "period", "customer_id")  # logical key (see sqlutil.ensure_table)


@dataclass(frozen=True)
class SegmentsSummary:
    campaign: str
    period: str
    rows: int
    by_stage: dict[str, int] = field(default_factory=dict)
    by_tier: dict[str, int] = field(default_factory=dict)
    as_of: str = ""


def same_period_last_year(period: Period) -> Period:
    """The period a year earlier: 52 weeks (Monday-aligned), 12 months, or the previous year."""
    return period.previous({"weekly": 52, "monthly": 12, "yearly": 1}[period.campaign])


def at_risk_events(config: Config) -> tuple[str, ...]:
    return tuple(str(e) for e in config.section("segments").get("at_risk_events", DEFAULT_AT_RISK_EVENTS))


def compute_segments(con: duckdb.DuckDBPyConnection, config: Config, period: Period) -> SegmentsSummary:
    """(Re)write ``segments`` for ``period``: one row per customer signed up before its end."""
    s = MetricsSettings.from_config(config)
    risky = "(" + ", ".join(str_lit(e) for e in at_risk_events(config)) + ")"
    sends = "(" + ", ".join(str_lit(e) for e in SEND_EVENTS) + ")"
    ly = same_period_last_year(period)
    S, E, YS, YE = ts_lit(period.start_ts), ts_lit(period.as_of_ts), ts_lit(ly.start_ts), ts_lit(ly.end_ts)
    as_of_day = date_lit(period.as_of)
    ensure_table(con, TABLE, COLUMNS, PRIMARY_KEY)
    cols = ", ".join(ident(c) for c in COLUMN_NAMES)
    days = "CAST(date_diff('second', {x}, {E}) // 86400 AS INTEGER)"
    since_signup = days.format(x="c.signed_up_at", E=E)
    since_active = days.format(x="a.last_at", E=E)
    with duckdb_settings(con, s.duckdb_memory_limit), transaction(con):
        con.execute("DELETE FROM segments WHERE campaign = ? AND period = ?", [period.campaign, period.start])
        con.execute(
            f"""
            INSERT INTO segments ({cols})
            WITH c AS (
                SELECT customer_id, email, signed_up_at FROM customers WHERE signed_up_at < {E}
            ), a AS (
                SELECT customer_id, min(occurred_at) AS first_at, max(occurred_at) AS last_at,
                       bool_or(occurred_at >= {S}) AS in_period,
                       bool_or(occurred_at >= {YS} AND occurred_at < {YE}) AS last_year
                FROM events WHERE occurred_at < {E}
                GROUP BY customer_id
            ), ee AS (
                SELECT coalesce(e.customer_id, m.customer_id) AS customer_id, e.event_type, e.occurred_at,
                       e.campaign IS NOT NULL AND e.event_type IN {sends} AS value_send,
                       coalesce(e.message_id, e.campaign || '/' || CAST(e.period AS VARCHAR) || '/' || coalesce(e.email, ''))
                           AS message
                FROM email_events e
                LEFT JOIN c m ON e.customer_id IS NULL AND lower(e.email) = lower(m.email)
                WHERE e.occurred_at < {E}
            ), g AS (
                SELECT customer_id,
                       max(occurred_at) FILTER (WHERE value_send) AS last_sent,
                       max(occurred_at) FILTER (WHERE event_type = 'open') AS last_open,
                       max(occurred_at) FILTER (WHERE event_type = 'click') AS last_click,
                       max(occurred_at) FILTER (WHERE event_type IN {risky}) AS at_risk_at,
                       arg_max(event_type, occurred_at) FILTER (WHERE event_type IN {risky}) AS at_risk_event,
                       count(DISTINCT message) FILTER (WHERE value_send) AS sent
                FROM ee WHERE customer_id IS NOT NULL
                GROUP BY customer_id
            ), u AS (
                SELECT ee.customer_id, count(DISTINCT ee.message) AS unopened
                FROM ee JOIN g USING (customer_id)
                WHERE ee.value_send
                  AND (ee.occurred_at > greatest(g.last_open, g.last_click) OR (g.last_open IS NULL AND g.last_click IS NULL))
                GROUP BY ee.customer_id
            ), r AS (
                SELECT c.customer_id, c.signed_up_at, a.first_at, a.last_at,
                       coalesce(a.in_period, false) AS in_period, coalesce(a.last_year, false) AS last_year,
                       g.last_sent, g.last_open, g.last_click, g.at_risk_at, g.at_risk_event,
                       coalesce(g.sent, 0) AS sent, coalesce(u.unopened, 0) AS unopened,
                       {since_signup} AS since_signup,
                       CASE WHEN a.last_at IS NOT NULL THEN {since_active} END AS since_active,
                       CASE WHEN a.last_at IS NULL THEN 'prospect'
                            WHEN c.signed_up_at >= {E} - INTERVAL {s.new_days} DAY THEN 'new'
                            WHEN a.last_at >= {E} - INTERVAL {s.active_days} DAY THEN 'active'
                            WHEN a.last_at >= {E} - INTERVAL {s.lapsed_days} DAY THEN 'lapsed'
                            WHEN coalesce(a.last_year, false) THEN 'seasonal'
                            ELSE 'churned' END AS stage,
                       CASE WHEN g.at_risk_at IS NOT NULL THEN 'at_risk'
                            WHEN g.last_click >= {E} - INTERVAL {s.engagement_lookback_days} DAY THEN 'clicked'
                            WHEN g.last_open >= {E} - INTERVAL {s.engagement_lookback_days} DAY THEN 'opened'
                            ELSE 'silent' END AS tier
                FROM c LEFT JOIN a USING (customer_id) LEFT JOIN g USING (customer_id) LEFT JOIN u USING (customer_id)
            ), t AS (
                SELECT *,
                       CASE stage
                         WHEN 'prospect' THEN format('prospect: signed up {{}}, no activity before {{}}',
                                                     strftime(signed_up_at, '%Y-%m-%d'), {as_of_day})
                         WHEN 'new' THEN format('new: signed up {{}} ({{}} days before {{}}, within {s.new_days})',
                                                strftime(signed_up_at, '%Y-%m-%d'), since_signup, {as_of_day})
                         WHEN 'active' THEN format('active: last activity {{}} ({{}} days before {{}}, within {s.active_days})',
                                                   strftime(last_at, '%Y-%m-%d'), since_active, {as_of_day})
                         WHEN 'lapsed' THEN format('lapsed: last activity {{}} ({{}} days before {{}}, {s.active_days}-{s.lapsed_days})',
                                                   strftime(last_at, '%Y-%m-%d'), since_active, {as_of_day})
                         WHEN 'seasonal' THEN format('seasonal: last activity {{}} ({{}} days before {{}}), active in {{}}..{{}} last year',
                                                     strftime(last_at, '%Y-%m-%d'), since_active, {as_of_day},
                                                     {str_lit(ly.start.isoformat())}, {str_lit((ly.end - timedelta(days=1)).isoformat())})
                         ELSE format('churned: last activity {{}} ({{}} days before {{}}, over {s.lapsed_days})',
                                     strftime(last_at, '%Y-%m-%d'), since_active, {as_of_day})
                       END AS stage_reason,
                       CASE tier
                         WHEN 'at_risk' THEN format('at_risk: {{}} on {{}}', at_risk_event, strftime(at_risk_at, '%Y-%m-%d'))
                         WHEN 'clicked' THEN format('clicked: last click {{}} (within {s.engagement_lookback_days} days)',
                                                    strftime(last_click, '%Y-%m-%d'))
                         WHEN 'opened' THEN format('opened: last open {{}} (within {s.engagement_lookback_days} days)',
                                                   strftime(last_open, '%Y-%m-%d'))
                         ELSE format('silent: no open or click within {s.engagement_lookback_days} days; {{}} value e-mails unopened in a row',
                                     unopened)
                       END AS tier_reason
                FROM r
            )
            SELECT {str_lit(period.campaign)}, {date_lit(period.start)}, customer_id, {E}, stage, tier,
                   signed_up_at, first_at, last_at, since_signup, since_active, in_period, last_year,
                   last_sent, last_open, last_click, at_risk_at, at_risk_event,
                   CAST(sent AS INTEGER), CAST(unopened AS INTEGER),
                   stage_reason, tier_reason, stage_reason || '; ' || tier_reason
            FROM t
            """
        )
        rows = con.execute("SELECT count(*) FROM segments WHERE campaign = ? AND period = ?",
                           [period.campaign, period.start]).fetchone()[0]
        by_stage = dict(con.execute(
            "SELECT stage, count(*) FROM segments WHERE campaign = ? AND period = ? GROUP BY 1 ORDER BY 2 DESC, 1",
            [period.campaign, period.start]).fetchall())
        by_tier = dict(con.execute(
            "SELECT tier, count(*) FROM segments WHERE campaign = ? AND period = ? GROUP BY 1 ORDER BY 2 DESC, 1",
            [period.campaign, period.start]).fetchall())
    return SegmentsSummary(campaign=period.campaign, period=period.key, rows=int(rows),
                           by_stage={k: int(v) for k, v in by_stage.items()},
                           by_tier={k: int(v) for k, v in by_tier.items()},
                           as_of=period.as_of_ts.isoformat())
