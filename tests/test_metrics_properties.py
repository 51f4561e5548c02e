"""Property-based tests (hypothesis) of the period metrics.

* every customer's totals equal a straightforward Python valuation of its events (exact
  Decimal arithmetic, rounded once, half up) — tasks, minutes, money per currency;
* percentiles lie in [0, 100], are monotone in the metric and equal for equal values;
* re-running a partition gives identical rows.
"""

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics import testing as T
from metrics.period import COLUMN_NAMES, compute_period_metrics
from valuemail.config import load_config
from valuemail.periods import Period

WEEK = Period("weekly", date(2026, 11, 16))
CFG = load_config(home="/tmp/valuemail-hypothesis", overrides={"segments": {"peer_min_cohort": 2}})
MODEL = CFG.value_model
TYPES = ["workflow_run", "document_signed", "login", "subscription_audit", "report_generated", "mystery_feature"]
CURRENCIES = [None, "USD", "EUR", "GBP"]

events_st = st.lists(
    st.tuples(
        st.integers(0, 5),                                  # customer
        st.integers(-3 * 24, 9 * 24 - 1),                   # hour offset from the week start
        st.sampled_from(TYPES),
        st.integers(0, 5),                                  # quantity
        st.one_of(st.none(), st.integers(0, 20000).map(lambda n: n / 10)),    # measured seconds
        st.one_of(st.none(), st.integers(0, 100000).map(lambda n: Decimal(n) / 1000)),  # measured amount
        st.sampled_from(CURRENCIES),
    ),
    min_size=1,
    max_size=40,
)
customers_st = st.lists(
    st.tuples(st.sampled_from([None, "USD", "EUR"]), st.one_of(st.none(), st.sampled_from(["30", "55.55", "120"])),
              st.sampled_from(["pro", "free"])),
    min_size=6, max_size=6,
)

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load(events, customers):
    con = T.warehouse()
    for i, (currency, rate, plan) in enumerate(customers):
        T.add_customer(con, f"c{i}", currency=currency, hourly_rate=rate, plan=plan)
    for cust, hour, etype, qty, dur, amount, currency in events:
        T.add_event(con, f"c{cust}", datetime(2026, 11, 16) + timedelta(hours=hour), etype, quantity=qty,
                    duration_saved_s=dur, amount_saved=amount, currency=currency if amount is not None else None,
                    known=etype in MODEL.events)
    return con


def _half_up(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _expected(events, customers):
    """The value model applied one event at a time, in Python."""
    out = {}
    for cust, hour, etype, qty, dur, amount, currency in events:
        if not 0 <= hour < 7 * 24:
            continue
        e = out.setdefault(f"c{cust}", {"tasks": 0, "events": 0, "s4": 0, "money": {}})
        e["events"] += 1
        ev = MODEL.events.get(etype)
        if ev is None:
            continue
        e["tasks"] += qty if ev.task else 0
        e["s4"] += int(round(dur * 10000)) if dur is not None else qty * int(ev.minutes_per_unit * 600000)
        cur, amt = (currency or MODEL.currency, amount) if amount is not None else (MODEL.currency, qty * ev.money_per_unit)
        e["money"][cur] = e["money"].get(cur, Decimal(0)) + amt
    for cid, e in out.items():
        currency, rate, _plan = customers[int(cid[1:])]
        display = currency or MODEL.currency
        e["minutes"] = _half_up(Decimal(e["s4"]) / 600000)
        direct = _half_up(e["money"].get(display, Decimal(0)))
        time_value = _half_up(Decimal(e["s4"]) * Decimal(rate) / 36_000_000) if rate else None
        e["currency"] = display
        e["money_direct"] = direct
        e["money_saved"] = direct + (time_value or 0)
        e["money_from_time"] = time_value
        e["money_other"] = sorted((c, str(_half_up(a))) for c, a in e["money"].items()
                                  if c != display and _half_up(a) != 0)
    return out


@SETTINGS
@given(events_st, customers_st)
def test_per_customer_totals_add_up_to_the_valued_events(events, customers):
    import json
    con = _load(events, customers)
    compute_period_metrics(con, CFG, WEEK)
    got = {r["customer_id"]: r for r in T.rows(con, "SELECT * FROM customer_metrics")}
    want = _expected(events, customers)
    assert set(got) == set(want)
    for cid, w in want.items():
        g = got[cid]
        assert (g["tasks"], g["events"], g["minutes_saved"], g["currency"]) == (w["tasks"], w["events"], w["minutes"], w["currency"]), cid
        assert (g["money_direct"], g["money_from_time"], g["money_saved"]) == (w["money_direct"], w["money_from_time"], w["money_saved"]), cid
        assert sorted((o["currency"], o["amount"]) for o in json.loads(g["money_other"])) == w["money_other"], cid
        assert sum(g["daily_tasks"]) == g["tasks"]
    con.close()


@SETTINGS
@given(events_st, customers_st)
def test_percentiles_are_in_range_and_monotone_in_the_metric(events, customers):
    con = _load(events, customers)
    compute_period_metrics(con, CFG, WEEK)
    for metric, pct in (("tasks", "tasks_percentile"), ("minutes_saved", "minutes_percentile")):
        rows = con.execute(
            f"SELECT peer_cohort, {metric}, {pct} FROM customer_metrics WHERE {pct} IS NOT NULL ORDER BY 1, 2"
        ).fetchall()
        for cohort, value, p in rows:
            assert 0.0 <= p <= 100.0
        for (c1, v1, p1), (c2, v2, p2) in zip(rows, rows[1:]):
            if c1 == c2:
                assert (p1 == p2) if v1 == v2 else (p1 < p2)
        # a cohort with >= k active customers has a percentile for every member
        sizes = con.execute(
            f"SELECT peer_cohort, count(*), count({pct}), any_value(peer_cohort_size) FROM customer_metrics "
            "WHERE peer_cohort IS NOT NULL GROUP BY 1"
        ).fetchall()
        for cohort, n, with_pct, size in sizes:
            assert size == n and with_pct == (n if n >= 2 else 0)
    con.close()


@SETTINGS
@given(events_st, customers_st)
def test_rerunning_a_partition_gives_identical_rows(events, customers):
    con = _load(events, customers)
    select = f"SELECT {', '.join(COLUMN_NAMES)} FROM customer_metrics ORDER BY customer_id"
    compute_period_metrics(con, CFG, WEEK)
    first = con.execute(select).fetchall()
    dist = con.execute("SELECT * FROM peer_distribution ORDER BY cohort, metric").fetchall()
    compute_period_metrics(con, CFG, WEEK)
    assert con.execute(select).fetchall() == first
    assert con.execute("SELECT * FROM peer_distribution ORDER BY cohort, metric").fetchall() == dist
    con.close()
