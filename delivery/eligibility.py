"""Eligibility: exactly one decision, with a reason code, per customer, campaign and period.

``reason = 'send'`` means the customer gets the e-mail; every other reason says why not.
Every customer who had signed up by the end of the period gets exactly one row in
``eligibility``; the rules are evaluated set-based in DuckDB in this fixed order of
precedence — **the first rule that matches decides** (``REASONS`` below is the order):

=====  =====================  ==============================================================
 #     reason                 rule
=====  =====================  ==============================================================
 1     already_sent           the ledger already has this (campaign, period, customer) as
                              ``sending``, ``sent`` or ``unknown``: it may be in their inbox
 2     stale_period           the period's send window has closed (``delivery/window.py``)
                              and the run did not ask for a late send (``allow_late``)
 3     invalid_customer       the customer id is not a valid id (``valuemail.ids``: stored
                              before ingest enforced the rule); it cannot carry links
 4     invalid_email          the address is not deliverable syntax (``delivery.addresses``)
 5     role_address           ``noreply@``, ``support@``, ``hr@`` … (``delivery.role_prefixes``)
 6     excluded_domain        ``delivery.excluded_domains`` (and subdomains) or ``excluded_tlds``
 7     complained             suppression in the preference store: complaint
 8     bounced                … hard bounce
 9     suppressed             … manual (an operator's decision, e.g. a competitor)
10     unsubscribed           … unsubscribed — of this customer *or of any customer with the
                              same mailbox* (the most severe one decides)
11     frequency_not_due      the preference (weekly / monthly / yearly / never) does not
                              include this campaign — after the **sunset rule** has slowed it
12     prospect               lifecycle stage ``prospect`` (registered, not converted)
13     churned                stage ``churned`` (long-term lapsed)
14     lapsed                 stage ``lapsed`` (short-term lapsed)
15     inactive_in_period     no activity in the period (no ``customer_metrics`` row)
16     nothing_to_report      active, but no task, minute or money saved to report
17     duplicate_address      would be sent, but another customer with the same mailbox gets
                              (or already got) this period's message
18     domain_cap_deferred    would be sent, but the recipient domain has reached its daily cap
19     send                   none of the above
=====  =====================  ==============================================================

Why this order: facts about what was already delivered first (never twice), then whether
the period may be mailed at all (the send window), then facts about the id and the address
(they can never be mailed), then consent (suppressions, most severe first, then the chosen
frequency), then lifecycle and content (is there value to show?), and only among those who
would be sent, one message per mailbox, then capacity (the domain cap).

One mailbox, one e-mail: addresses are compared **normalised** — trimmed and lower-cased
as a whole (:func:`delivery.addresses.normalised_sql`; mailbox providers treat the local
part case-insensitively too).  Dots and ``+tags`` are kept: ``d.up@`` and ``dup+news@``
are other mailboxes.  Among the customers of one mailbox who would be sent, the one the
ledger already has for this period wins, else the **lowest customer id** (string order);
the others get ``duplicate_address``.  A suppression of any customer of the mailbox
applies to all of them (an unsubscribe is the person's, not the account's); a frequency
preference stays the customer's own.

Preferences: the preference store's frequency is the most frequent campaign a customer
wants — ``weekly`` gets weekly, monthly and yearly; ``monthly`` gets monthly and yearly;
``yearly`` the yearly recap; ``never`` nothing.  Suppressions are final until the customer
opts in again (the store lifts them only on an explicit opt-in).

Sunset rule (``delivery.sunset_*``): after ``sunset_to_monthly_after`` (default 8)
consecutive unopened value e-mails a weekly customer is treated as monthly; after
``sunset_to_none_after`` (default 12) as ``never``.  Any open or click resets the count.
Only messages sent with engagement tracking count (a message is "unopened" only if we had
a way to see it opened: it has a Send / Delivery event in ``email_events``), so a transport
without event publishing never sunsets anybody.  The count comes from ``segments`` when
the metrics stage provides it, else from ``outbox`` + ``email_events``.

Domain cap (``delivery.domain_daily_cap``, default 20; 0 = off): per recipient domain and
UTC day, across every campaign.  Among the customers who would be sent, those of a domain
beyond its remaining budget for today (ordered by customer id) get ``domain_cap_deferred``.
They are **not dropped**: the decision is re-evaluated by the next run for the period —
the ``deferred_sends`` sensor starts one a day while any period has deferred customers —
and the next day's budget lets the next 20 through.  Large mailbox providers
(``delivery.domain_cap_exempt``: gmail.com, outlook.com, qq.com …) host independent
people, not one company, and are exempt.  The send step enforces the same cap again,
against what actually went out today, so two campaigns on one day cannot exceed it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

import duckdb

from delivery.addresses import AddressRules, normalised_sql
from delivery.prefs import SUPPRESSION_REASON
from delivery.outbox import ensure_outbox
from delivery.window import SendWindow
from valuemail.config import Config
from valuemail.ids import id_problem_sql
from valuemail.periods import Period
from valuemail.warehouse import transaction

#: Every reason code, in order of precedence (first match wins).  ``send`` is last.
REASONS: tuple[str, ...] = (
    "already_sent",
    "stale_period",
    "invalid_customer",
    "invalid_email",
    "role_address",
    "excluded_domain",
    "complained",
    "bounced",
    "suppressed",
    "unsubscribed",
    "frequency_not_due",
    "prospect",
    "churned",
    "lapsed",
    "inactive_in_period",
    "nothing_to_report",
    "duplicate_address",
    "domain_cap_deferred",
    "send",
)

DDL = """
CREATE TABLE IF NOT EXISTS eligibility (
    campaign             VARCHAR   NOT NULL,
    period               DATE      NOT NULL,
    customer_id          VARCHAR   NOT NULL,
    reason               VARCHAR   NOT NULL,   -- 'send' or why not (see delivery/eligibility.py)
    detail               VARCHAR,              -- a human sentence for the analyst
    decided_at           TIMESTAMP NOT NULL,   -- UTC
    email                VARCHAR,              -- the normalised address the rules looked at
    domain               VARCHAR,
    stage                VARCHAR,              -- lifecycle stage used (segments, or derived)
    tier                 VARCHAR,              -- engagement tier (segments), if known
    frequency            VARCHAR,              -- the preference (weekly | monthly | yearly | never)
    effective_frequency  VARCHAR,              -- after the sunset rule
    consecutive_unopened INTEGER,
    PRIMARY KEY (campaign, period, customer_id)
)
"""
_COLUMNS = [
    ("email", "VARCHAR"), ("domain", "VARCHAR"), ("stage", "VARCHAR"), ("tier", "VARCHAR"),
    ("frequency", "VARCHAR"), ("effective_frequency", "VARCHAR"), ("consecutive_unopened", "INTEGER"),
]
DEFAULT_CAP_EXEMPT = (
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com",
    "icloud.com", "me.com", "aol.com", "proton.me", "protonmail.com", "gmx.de", "gmx.net", "web.de",
    "qq.com", "163.com", "126.com",
)


@dataclass(frozen=True)
class EligibilitySummary:
    by_reason: dict[str, int]

    @property
    def send(self) -> int:
        return self.by_reason.get("send", 0)

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


@dataclass(frozen=True)
class EligibilitySettings:
    rules: AddressRules
    domain_cap: int = 20
    cap_exempt: tuple[str, ...] = DEFAULT_CAP_EXEMPT
    sunset_to_monthly_after: int = 8
    sunset_to_none_after: int = 12
    active_days: int = 30
    lapsed_days: int = 90

    @classmethod
    def from_config(cls, config: Config) -> "EligibilitySettings":
        d = config.section("delivery")
        seg = config.section("segments")
        to_monthly = int(d.get("sunset_to_monthly_after", 8))
        to_none = int(d.get("sunset_to_none_after", 12))
        if to_monthly <= 0 or to_none < to_monthly:
            raise ValueError("delivery.sunset_to_none_after must be >= sunset_to_monthly_after > 0")
        return cls(
            rules=AddressRules.from_config(d),
            domain_cap=int(d.get("domain_daily_cap", 20)),
            cap_exempt=tuple(str(x).lower() for x in d.get("domain_cap_exempt", DEFAULT_CAP_EXEMPT)),
            sunset_to_monthly_after=to_monthly,
            sunset_to_none_after=to_none,
            active_days=int(seg.get("active_days", 30)),
            lapsed_days=int(seg.get("lapsed_days", 90)),
        )


def ensure_eligibility(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'eligibility'").fetchall()}
    for name, kind in _COLUMNS:
        if name not in have:
            con.execute(f"ALTER TABLE eligibility ADD COLUMN {name} {kind}")


def _used(sql: str, params: Mapping[str, object]) -> dict[str, object]:
    """Only the named parameters ``sql`` uses (DuckDB refuses unused ones)."""
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main'", [table]
    ).fetchall()}


def _engagement_sql(has_events: bool) -> str:
    """Per customer: value e-mails sent with tracking and unopened since their last open/click."""
    if not has_events:
        return "SELECT NULL::VARCHAR AS customer_id, 0 AS consecutive_unopened WHERE false"
    return """
        WITH sent AS (
            SELECT o.customer_id, o.sent_at,
                   EXISTS (SELECT 1 FROM email_events ev WHERE ev.campaign = o.campaign AND ev.period = o.period
                           AND ev.customer_id = o.customer_id AND ev.event_type IN ('open', 'click')) AS engaged,
                   EXISTS (SELECT 1 FROM email_events ev WHERE ev.campaign = o.campaign AND ev.period = o.period
                           AND ev.customer_id = o.customer_id AND ev.event_type IN ('send', 'delivery')) AS tracked
            FROM outbox o WHERE o.status = 'sent' AND o.sent_at IS NOT NULL
        ),
        last_engaged AS (SELECT customer_id, max(sent_at) AS at FROM sent WHERE engaged GROUP BY customer_id)
        SELECT s.customer_id,
               count(*) FILTER (WHERE s.tracked AND NOT s.engaged AND (l.at IS NULL OR s.sent_at > l.at))
                   AS consecutive_unopened
        FROM sent s LEFT JOIN last_engaged l USING (customer_id)
        GROUP BY s.customer_id
    """


def decide_eligibility(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    period: Period,
    store=None,
    now: datetime | None = None,
    allow_late: bool = False,
) -> EligibilitySummary:
    """(Re)write the decisions for every customer who had signed up by the end of ``period``.

    ``store`` is a :class:`preference_centre.store.PreferenceStore` (opened from the config
    when omitted).  ``now`` (UTC) decides which day the domain cap counts and whether the
    period's send window has closed (then ``stale_period``, unless ``allow_late``).
    """
    from delivery.prefs import load_states, open_store

    settings = EligibilitySettings.from_config(config)
    window = SendWindow.from_config(config)
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    day_start = datetime(now.year, now.month, now.day)
    own_store = store is None
    store = store if store is not None else open_store(config)
    try:
        load_states(con, store)
    finally:
        if own_store:
            store.close()

    ensure_outbox(con)
    metrics_cols = _columns(con, "customer_metrics")
    segment_cols = _columns(con, "segments")
    has_events = bool(_columns(con, "email_events"))
    sql = settings.rules.sql("b.addr")

    if metrics_cols:
        value_terms = [f"coalesce(m.{c}, 0) > 0" for c in ("tasks", "minutes_saved", "money_saved") if c in metrics_cols]
        has_value = " OR ".join(value_terms) or "true"
        tasks_expr = "m.tasks" if "tasks" in metrics_cols else "NULL"
        minutes_expr = "m.minutes_saved" if "minutes_saved" in metrics_cols else "NULL"
        metrics_join = ("LEFT JOIN customer_metrics m ON m.customer_id = c.customer_id "
                        "AND m.campaign = $campaign AND m.period = $period")
        metrics_present = "m.customer_id IS NOT NULL"
    else:
        has_value, tasks_expr, minutes_expr, metrics_join, metrics_present = "false", "NULL", "NULL", "", "false"

    if {"stage", "customer_id", "campaign", "period"} <= segment_cols:
        tier = "s.tier" if "tier" in segment_cols else "NULL"
        unopened = "s.consecutive_unopened" if "consecutive_unopened" in segment_cols else "NULL"
        segments_join = ("LEFT JOIN segments s ON s.customer_id = c.customer_id "
                         "AND s.campaign = $campaign AND s.period = $period")
        seg_stage, seg_tier, seg_unopened = "s.stage", tier, unopened
    else:
        segments_join, seg_stage, seg_tier, seg_unopened = "", "NULL", "NULL", "NULL"

    params = {
        "campaign": period.campaign, "period": period.start, "start": period.start_ts, "end": period.as_of_ts,
        "now": now, "day": day_start, "cap": settings.domain_cap, "exempt": list(settings.cap_exempt),
        "to_monthly": settings.sunset_to_monthly_after, "to_none": settings.sunset_to_none_after,
        "active_days": settings.active_days, "lapsed_days": settings.lapsed_days,
        "stale": window.is_stale(period, now) and not allow_late, "severity": list(SUPPRESSION_REASON),
    }
    with transaction(con):
        ensure_eligibility(con)
        con.execute("DELETE FROM eligibility WHERE campaign = $campaign AND period = $period",
                    {"campaign": period.campaign, "period": period.start})
        create_sql = f"""
            CREATE OR REPLACE TEMP TABLE _elig AS
            WITH b AS (
                SELECT c.customer_id, c.email AS raw_email, {normalised_sql("c.email")} AS addr
                FROM customers c WHERE c.signed_up_at < $end
            ),
            mailbox_suppression AS (  -- the most severe suppression of any customer of the mailbox
                SELECT {normalised_sql("c.email")} AS addr,
                       first(pc.suppression ORDER BY list_position($severity, pc.suppression), c.customer_id)
                           AS suppression,
                       first(c.customer_id ORDER BY list_position($severity, pc.suppression), c.customer_id)
                           AS suppressed_via
                FROM customers c JOIN _pc_state pc USING (customer_id)
                WHERE pc.suppression IS NOT NULL
                GROUP BY 1
            ),
            mailbox_taken AS (  -- mailboxes the ledger already has this period's message for
                SELECT {normalised_sql("email")} AS addr, min(customer_id) AS holder FROM outbox
                WHERE campaign = $campaign AND period = $period AND status IN ('sending', 'sent', 'unknown')
                GROUP BY 1
            ),
            last_active AS (
                SELECT customer_id, max(occurred_at) AS at FROM events
                WHERE occurred_at < $end AND customer_id IN (SELECT customer_id FROM b)
                GROUP BY customer_id
            ),
            engagement AS ({_engagement_sql(has_events)}),
            x AS (
                SELECT b.customer_id, b.raw_email, b.addr,
                       {id_problem_sql('b.customer_id')} AS id_problem,
                       {sql['domain']} AS domain,
                       {sql['invalid']} AS is_invalid,
                       {sql['role']} AS is_role,
                       {sql['excluded']} AS is_excluded,
                       o.status AS ledger_status,
                       coalesce(ms.suppression, pc.suppression) AS suppression,
                       ms.suppressed_via,
                       coalesce(pc.frequency, 'weekly') AS frequency,
                       coalesce({seg_stage},
                                CASE WHEN la.at IS NULL THEN NULL
                                     WHEN la.at < $end - to_days($lapsed_days) THEN 'churned'
                                     WHEN la.at < $end - to_days($active_days) THEN 'lapsed'
                                     ELSE 'active' END) AS stage,
                       {seg_tier} AS tier,
                       coalesce({seg_unopened}, en.consecutive_unopened, 0) AS consecutive_unopened,
                       la.at AS last_active_at,
                       {metrics_present} AS has_metrics,
                       ({has_value}) AS has_value,
                       {tasks_expr} AS tasks,
                       {minutes_expr} AS minutes_saved
                FROM b
                JOIN customers c ON c.customer_id = b.customer_id
                {metrics_join}
                {segments_join}
                LEFT JOIN last_active la ON la.customer_id = b.customer_id
                LEFT JOIN engagement en ON en.customer_id = b.customer_id
                LEFT JOIN _pc_state pc ON pc.customer_id = b.customer_id
                LEFT JOIN mailbox_suppression ms ON ms.addr = b.addr
                LEFT JOIN outbox o ON o.campaign = $campaign AND o.period = $period AND o.customer_id = b.customer_id
            ),
            y AS (
                SELECT *,
                       CASE WHEN consecutive_unopened >= $to_none THEN 'never'
                            WHEN consecutive_unopened >= $to_monthly AND frequency = 'weekly' THEN 'monthly'
                            ELSE frequency END AS effective_frequency
                FROM x
            ),
            z AS (
                SELECT *,
                       CASE
                           WHEN ledger_status IN ('sending', 'sent', 'unknown') THEN 'already_sent'
                           WHEN $stale THEN 'stale_period'
                           WHEN id_problem IS NOT NULL THEN 'invalid_customer'
                           WHEN is_invalid THEN 'invalid_email'
                           WHEN is_role THEN 'role_address'
                           WHEN is_excluded THEN 'excluded_domain'
                           WHEN suppression = 'complaint' THEN 'complained'
                           WHEN suppression = 'hard_bounce' THEN 'bounced'
                           WHEN suppression = 'manual' THEN 'suppressed'
                           WHEN suppression = 'unsubscribed' THEN 'unsubscribed'
                           WHEN NOT list_contains(CASE effective_frequency
                                    WHEN 'weekly' THEN ['weekly', 'monthly', 'yearly']
                                    WHEN 'monthly' THEN ['monthly', 'yearly']
                                    WHEN 'yearly' THEN ['yearly']
                                    ELSE []::VARCHAR[] END, $campaign) THEN 'frequency_not_due'
                           WHEN stage = 'prospect' THEN 'prospect'
                           WHEN stage = 'churned' THEN 'churned'
                           WHEN stage = 'lapsed' THEN 'lapsed'
                           WHEN NOT has_metrics THEN 'inactive_in_period'
                           WHEN NOT has_value THEN 'nothing_to_report'
                           ELSE 'send'
                       END AS first_reason
                FROM y
            ),
            mailbox AS (
                SELECT z.*,
                       coalesce(t.holder, min(CASE WHEN z.first_reason = 'send' THEN z.customer_id END)
                                              OVER (PARTITION BY z.addr)) AS mailbox_winner
                FROM z LEFT JOIN mailbox_taken t ON t.addr = z.addr
            ),
            deduplicated AS (
                SELECT *,
                       CASE WHEN first_reason = 'send' AND mailbox_winner <> customer_id THEN 'duplicate_address'
                            ELSE first_reason END AS base_reason
                FROM mailbox
            ),
            used AS (
                SELECT domain, count(*) AS n FROM outbox
                WHERE claimed_at >= $day AND status IN ('sending', 'sent', 'unknown')
                GROUP BY domain
            ),
            ranked AS (
                SELECT z.*, coalesce(u.n, 0) AS used_today,
                       CASE WHEN z.base_reason = 'send' AND $cap > 0 AND NOT list_contains($exempt, z.domain)
                            THEN row_number() OVER (PARTITION BY z.domain, z.base_reason = 'send' ORDER BY z.customer_id)
                       END AS domain_rank
                FROM deduplicated z LEFT JOIN used u ON u.domain = z.domain
            )
            SELECT *,
                   CASE WHEN domain_rank IS NOT NULL AND domain_rank + used_today > $cap
                        THEN 'domain_cap_deferred' ELSE base_reason END AS reason
            FROM ranked
            """
        con.execute(create_sql, _used(create_sql, params))
        con.execute(
            """
            INSERT INTO eligibility (campaign, period, customer_id, reason, detail, decided_at, email, domain, stage,
                                     tier, frequency, effective_frequency, consecutive_unopened)
            SELECT $campaign, $period, customer_id, reason,
                   CASE reason
                       WHEN 'already_sent' THEN 'the message for this period is already ' || ledger_status
                            || ' (see outbox); it is never sent twice'
                       WHEN 'invalid_customer' THEN 'customer id '
                            || CASE WHEN length(customer_id) > 40 THEN left(customer_id, 40) || '…' ELSE customer_id END
                            || ' ' || id_problem || ': it cannot carry links; fix it at the source'
                       WHEN 'invalid_email' THEN 'not a deliverable e-mail address: ' || coalesce(raw_email, '(none)')
                       WHEN 'role_address' THEN 'role / no-reply address (' || addr || ')'
                       WHEN 'excluded_domain' THEN 'domain ' || domain || ' is excluded (delivery.excluded_domains / excluded_tlds)'
                       WHEN 'stale_period' THEN $stale_detail
                       WHEN 'complained' THEN 'complained: suppressed until they opt in again' || via
                       WHEN 'bounced' THEN 'hard bounce: suppressed until they opt in again' || via
                       WHEN 'suppressed' THEN 'suppressed by an operator' || via
                       WHEN 'unsubscribed' THEN 'unsubscribed: suppressed until they opt in again' || via
                       WHEN 'frequency_not_due' THEN
                            CASE WHEN effective_frequency <> frequency
                                 THEN 'sunset: ' || consecutive_unopened || ' consecutive unopened value e-mails, so '
                                      || frequency || ' is treated as ' || effective_frequency
                                 ELSE 'prefers ' || frequency || ' e-mails; this is the ' || $campaign || ' one' END
                       WHEN 'prospect' THEN 'lifecycle stage prospect: registered, not converted'
                       WHEN 'churned' THEN 'lifecycle stage churned: last active '
                            || coalesce(strftime(last_active_at, '%Y-%m-%d'), 'never')
                       WHEN 'lapsed' THEN 'lifecycle stage lapsed: last active '
                            || coalesce(strftime(last_active_at, '%Y-%m-%d'), 'never')
                       WHEN 'inactive_in_period' THEN 'no activity in the period'
                       WHEN 'nothing_to_report' THEN 'active, but no task, minute or money saved to report'
                       WHEN 'duplicate_address' THEN 'same mailbox (' || addr || ') as customer ' || mailbox_winner
                            || ', who gets this period''s message: one e-mail per mailbox'
                       WHEN 'domain_cap_deferred' THEN 'domain ' || domain || ' reached its daily cap of ' || $cap
                            || ' messages; re-evaluated by the next day''s run'
                       ELSE format('{} tasks, {} minutes saved', coalesce(tasks, 0), coalesce(minutes_saved, 0))
                   END,
                   $now, addr, domain, stage, tier, frequency, effective_frequency, consecutive_unopened
            FROM (SELECT *, CASE WHEN suppressed_via <> customer_id
                                 THEN ' (set on customer ' || suppressed_via || ', same mailbox)' ELSE '' END AS via
                  FROM _elig)
            """,
            {"campaign": period.campaign, "period": period.start, "now": now, "cap": settings.domain_cap,
             "stale_detail": window.describe(period) + "; nothing is sent for a stale period "
                             "(valuemail run --allow-late sends it anyway)"},
        )
        con.execute("DROP TABLE IF EXISTS _elig")
        rows = con.execute(
            "SELECT reason, count(*) FROM eligibility WHERE campaign = ? AND period = ? GROUP BY reason",
            [period.campaign, period.start],
        ).fetchall()
    return EligibilitySummary(by_reason=dict(Counter({r: n for r, n in rows}).most_common()))


def reason_rank() -> Mapping[str, int]:
    return {reason: i + 1 for i, reason in enumerate(REASONS)}


def periods_with_deferred(con: duckdb.DuckDBPyConnection, campaign: str, today) -> list[str]:
    """Periods of ``campaign`` with customers deferred (domain cap) or messages left pending before ``today``,
    or left ``sending`` by a run that died (the re-run reconciles them).

    The ``deferred_<campaign>_sends`` sensors re-run these once a day, so a deferred customer
    is re-evaluated — and sent, within the day's cap — instead of dropped.
    """
    day = datetime(today.year, today.month, today.day)
    periods: set = set()
    for table, sql in (
        ("eligibility", "SELECT DISTINCT period FROM eligibility WHERE campaign = ? AND reason = 'domain_cap_deferred' "
                        "AND decided_at < ?"),
        ("outbox", "SELECT DISTINCT period FROM outbox WHERE campaign = ? AND (status = 'sending' OR "
                   "(status = 'pending' AND coalesce(claimed_at, created_at) < ?))"),
    ):
        if _columns(con, table):
            periods.update(r[0] for r in con.execute(sql, [campaign, day]).fetchall())
    return sorted(p.isoformat() for p in periods)
