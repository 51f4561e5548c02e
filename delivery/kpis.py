"""KPIs per campaign and period: the send funnel, engagement rates, retention and churn by cohort.

Written to two tables (rewritten per period, delete-then-insert):

``kpis(campaign, period, metric, value, numerator, denominator, computed_at)``
    counts (``customers``, ``eligible``, ``sent``, ``failed``, ``unknown``, ``cancelled``,
    ``deferred``, ``skipped``, ``skipped_<reason>`` …, ``delivered``, ``bounced``,
    ``hard_bounced``, ``complained``, ``opened``, ``clicked``, ``unsubscribed``) and rates
    (``delivery_rate``, ``bounce_rate``, ``hard_bounce_rate``, ``complaint_rate``,
    ``open_rate``, ``click_through_rate``, ``click_to_open_rate``, ``unsubscribe_rate``,
    ``retention_rate``, ``churn_rate``) with the numerator and denominator they came from.
``kpi_cohorts(campaign, period, cohort, customers, active_previous, active, retained,
retention_rate, churn_rate, computed_at)``
    by signup month: of the cohort's customers active in the previous period, how many were
    active again in this one (retention) or not (churn).

Definitions (documented so every figure is traceable):

* eligible = decisions ``send`` + ``already_sent`` + ``domain_cap_deferred``; skipped = the rest.
* sent = ledger rows ``sent``; bounce, hard-bounce and delivery rates are over sent.
* complaint, open, click-through and unsubscribe rates are over *delivered*: customers
  with a ``delivery`` event when the transport publishes them (SES), else sent − bounced
  (SMTP and file transports report no deliveries).  Opens and clicks are unique customers.
* unsubscribed = customers sent this message who then unsubscribed: an SES ``Subscription``
  event for it, or an active ``unsubscribed`` suppression in the preference store that
  started after the send.
* activity = at least one usage event in the period (``events``), so retention does not
  depend on which periods' metrics were computed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timezone

import duckdb

from valuemail.periods import Period
from valuemail.warehouse import transaction

DDL = [
    """
    CREATE TABLE IF NOT EXISTS kpis (
        campaign    VARCHAR NOT NULL,
        period      DATE    NOT NULL,
        metric      VARCHAR NOT NULL,
        value       DOUBLE,              -- NULL when the denominator is 0
        numerator   BIGINT,
        denominator BIGINT,
        computed_at TIMESTAMP NOT NULL,
        PRIMARY KEY (campaign, period, metric)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS kpi_cohorts (
        campaign        VARCHAR NOT NULL,
        period          DATE    NOT NULL,
        cohort          VARCHAR NOT NULL,   -- signup month, YYYY-MM
        customers       BIGINT  NOT NULL,   -- signed up in the cohort, by the end of the period
        active_previous BIGINT  NOT NULL,
        active          BIGINT  NOT NULL,
        retained        BIGINT  NOT NULL,
        retention_rate  DOUBLE,
        churn_rate      DOUBLE,
        computed_at     TIMESTAMP NOT NULL,
        PRIMARY KEY (campaign, period, cohort)
    )
    """,
]
FUNNEL = ("eligible", "sent", "delivered", "opened", "clicked")


@dataclass
class Kpis:
    campaign: str
    period: str
    counts: dict[str, int] = field(default_factory=dict)
    rates: dict[str, tuple[float | None, int, int]] = field(default_factory=dict)   # value, numerator, denominator
    cohorts: list[tuple] = field(default_factory=list)

    def rate(self, name: str) -> float | None:
        return self.rates.get(name, (None, 0, 0))[0]


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}


def _ratio(num: int, den: int) -> tuple[float | None, int, int]:
    return (num / den if den else None, int(num), int(den))


def compute_kpis(con: duckdb.DuckDBPyConnection, period: Period, store=None) -> Kpis:
    """Compute and store the period's KPIs (see the module docstring)."""
    tables = _tables(con)
    p = [period.campaign, period.start]
    k = Kpis(period.campaign, period.key)
    counts = k.counts
    by_reason: dict[str, int] = {}
    if "eligibility" in tables:
        by_reason = dict(con.execute(
            "SELECT reason, count(*) FROM eligibility WHERE campaign = ? AND period = ? GROUP BY reason", p).fetchall())
    counts["customers"] = sum(by_reason.values())
    counts["eligible"] = sum(by_reason.get(r, 0) for r in ("send", "already_sent", "domain_cap_deferred"))
    counts["skipped"] = counts["customers"] - counts["eligible"]
    for reason, n in by_reason.items():
        if reason not in ("send", "already_sent"):
            counts[f"skipped_{reason}" if reason != "domain_cap_deferred" else "deferred_domain_cap"] = int(n)
    ledger: dict[str, int] = {}
    sent_ids: list[tuple[str, datetime]] = []
    if "outbox" in tables:
        ledger = dict(con.execute(
            "SELECT status, count(*) FROM outbox WHERE campaign = ? AND period = ? GROUP BY status", p).fetchall())
        sent_ids = con.execute(
            "SELECT customer_id, sent_at FROM outbox WHERE campaign = ? AND period = ? AND status = 'sent'", p).fetchall()
    for status in ("sent", "failed", "unknown", "cancelled", "pending"):
        counts[status] = int(ledger.get(status, 0))

    ev: dict[str, int] = {}
    unsub_customers: set[str] = set()
    if "email_events" in tables:
        row = con.execute(
            """
            SELECT count(DISTINCT customer_id) FILTER (WHERE event_type = 'delivery'),
                   count(DISTINCT customer_id) FILTER (WHERE event_type = 'bounce'),
                   count(DISTINCT customer_id) FILTER (WHERE event_type = 'bounce' AND bounce_type = 'Permanent'),
                   count(DISTINCT customer_id) FILTER (WHERE event_type = 'complaint'),
                   count(DISTINCT customer_id) FILTER (WHERE event_type IN ('open', 'click')),
                   count(DISTINCT customer_id) FILTER (WHERE event_type = 'click')
            FROM email_events WHERE campaign = ? AND period = ? AND customer_id IS NOT NULL
            """, p).fetchone()
        ev = dict(zip(("delivered", "bounced", "hard_bounced", "complained", "opened", "clicked"), (int(x) for x in row)))
        unsub_customers = {r[0] for r in con.execute(
            "SELECT DISTINCT customer_id FROM email_events WHERE campaign = ? AND period = ? AND event_type = 'subscription' "
            "AND customer_id IS NOT NULL AND coalesce(json_extract(detail, '$.unsubscribeAll')::BOOLEAN, false)", p).fetchall()}
    for name in ("delivered", "bounced", "hard_bounced", "complained", "opened", "clicked"):
        counts[name] = ev.get(name, 0)
    if store is not None and sent_ids:
        sent_at = dict(sent_ids)
        for cid, state in store.overrides().items():
            if state.suppression == "unsubscribed" and cid in sent_at and cid not in unsub_customers:
                profile = store.profile(cid)
                since = profile.suppressed_since if profile else None
                if since is not None and sent_at[cid] is not None and since.replace(tzinfo=None) >= sent_at[cid]:
                    unsub_customers.add(cid)
    counts["unsubscribed"] = len(unsub_customers)

    sent = counts["sent"]
    delivered_base = counts["delivered"] if counts["delivered"] else max(sent - counts["bounced"], 0)
    k.rates = {
        "delivery_rate": _ratio(counts["delivered"], sent),
        "bounce_rate": _ratio(counts["bounced"], sent),
        "hard_bounce_rate": _ratio(counts["hard_bounced"], sent),
        "complaint_rate": _ratio(counts["complained"], delivered_base),
        "open_rate": _ratio(counts["opened"], delivered_base),
        "click_through_rate": _ratio(counts["clicked"], delivered_base),
        "click_to_open_rate": _ratio(counts["clicked"], counts["opened"]),
        "unsubscribe_rate": _ratio(counts["unsubscribed"], delivered_base),
    }

    # Retention and churn by signup-month cohort, from usage events.
    previous = period.previous()
    if {"events", "customers"} <= tables:
        k.cohorts = con.execute(
            """
            WITH c AS (SELECT customer_id, strftime(signed_up_at, '%Y-%m') AS cohort FROM customers WHERE signed_up_at < $end),
            prev AS (SELECT DISTINCT customer_id FROM events WHERE occurred_at >= $pstart AND occurred_at < $pend),
            cur AS (SELECT DISTINCT customer_id FROM events WHERE occurred_at >= $start AND occurred_at < $end)
            SELECT c.cohort, count(*) AS customers,
                   count(prev.customer_id) AS active_previous,
                   count(cur.customer_id) AS active,
                   count(*) FILTER (WHERE prev.customer_id IS NOT NULL AND cur.customer_id IS NOT NULL) AS retained
            FROM c LEFT JOIN prev USING (customer_id) LEFT JOIN cur USING (customer_id)
            GROUP BY c.cohort ORDER BY c.cohort
            """,
            {"start": period.start_ts, "end": period.end_ts, "pstart": previous.start_ts, "pend": previous.end_ts},
        ).fetchall()
    active_prev = sum(r[2] for r in k.cohorts)
    retained = sum(r[4] for r in k.cohorts)
    k.rates["retention_rate"] = _ratio(retained, active_prev)
    k.rates["churn_rate"] = _ratio(active_prev - retained, active_prev)
    _store(con, k)
    return k


def _store(con: duckdb.DuckDBPyConnection, k: Kpis) -> None:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    p = [k.campaign, datetime.fromisoformat(k.period).date()]
    rows = [(*p, name, float(v), int(v), None, now) for name, v in k.counts.items()]
    rows += [(*p, name, v, num, den, now) for name, (v, num, den) in k.rates.items()]
    cohort_rows = []
    for cohort, customers, active_prev, active, retained in k.cohorts:
        retention = retained / active_prev if active_prev else None
        cohort_rows.append((*p, cohort, customers, active_prev, active, retained, retention,
                            None if retention is None else 1 - retention, now))
    with transaction(con):
        for ddl in DDL:
            con.execute(ddl)
        con.execute("DELETE FROM kpis WHERE campaign = ? AND period = ?", p)
        con.execute("DELETE FROM kpi_cohorts WHERE campaign = ? AND period = ?", p)
        if rows:
            con.executemany("INSERT INTO kpis VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        if cohort_rows:
            con.executemany("INSERT INTO kpi_cohorts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", cohort_rows)


def chart_png(k: Kpis) -> bytes:
    """The funnel (eligible → sent → delivered → opened → clicked) and retention by cohort, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), dpi=100)
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    values = [k.counts.get(name, 0) if name != "delivered" or k.counts.get("delivered") else
              max(k.counts.get("sent", 0) - k.counts.get("bounced", 0), 0) for name in FUNNEL]
    bars = ax1.bar(range(len(FUNNEL)), values, color=["#9aa5b1", "#3e7cb1", "#4c9f70", "#f0a202", "#d1495b"])
    ax1.set_xticks(range(len(FUNNEL)), [n if n != "delivered" or k.counts.get("delivered") else "delivered*"
                                        for n in FUNNEL], fontsize=8)
    ax1.set_title(f"{k.campaign} {k.period}: send funnel", fontsize=10)
    for bar, value in zip(bars, values):
        ax1.annotate(f"{value:,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
    ax1.spines[["top", "right"]].set_visible(False)
    cohorts = [c for c in k.cohorts if c[2]][-8:]
    if cohorts:
        ax2.bar([c[0] for c in cohorts], [c[4] / c[2] * 100 for c in cohorts], color="#3e7cb1")
        ax2.set_ylim(0, 100)
        ax2.tick_params(axis="x", labelrotation=60, labelsize=7)
    else:
        ax2.text(0.5, 0.5, "no activity in the previous period", ha="center", va="center", fontsize=8)
    ax2.set_title("retention by signup cohort (%)", fontsize=10)
    ax2.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
