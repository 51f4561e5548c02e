"""Peer comparisons: cohorts just below and at k, hand-computed percentiles and histograms."""

import json
from datetime import date

import pytest

from metrics import testing as T
from metrics.peers import EDGES, bucket_of
from metrics.period import compute_period_metrics
from valuemail.config import ConfigError
from valuemail.periods import Period

WEEK = Period("weekly", date(2026, 11, 16))


@pytest.fixture
def con():
    c = T.warehouse()
    yield c
    c.close()


def _customer(con, cid, plan, tasks, country="US"):
    T.add_customer(con, cid, plan=plan, country=country)
    if tasks:
        T.add_event(con, cid, "2026-11-17 10:00:00", "workflow_run", quantity=tasks)  # 3 min a task


def _rows(con):
    return {r["customer_id"]: r for r in T.rows(con, "SELECT * FROM customer_metrics")}


def test_cohort_at_k_gets_percentiles_and_one_below_k_gets_none(con, tmp_path):
    cfg = T.config(tmp_path, segments={"peer_min_cohort": 5})
    for cid, tasks in (("p1", 1), ("p2", 2), ("p3", 2), ("p4", 3), ("p5", 10)):
        _customer(con, cid, "pro", tasks)
    for cid, tasks in (("f1", 1), ("f2", 2), ("f3", 3), ("f4", 4)):
        _customer(con, cid, "free", tasks)
    _customer(con, "f5", "free", 0)            # signed up, inactive: not part of the active cohort
    T.add_event(con, "orphan", "2026-11-17 10:00:00")   # events without a customers row: no cohort
    summary = compute_period_metrics(con, cfg, WEEK)
    rows = _rows(con)

    # pro: 5 active customers (= k).  percentile = share of the other 4 with strictly fewer tasks.
    expected = {"p1": 0.0, "p2": 25.0, "p3": 25.0, "p4": 75.0, "p5": 100.0}
    assert {c: rows[c]["tasks_percentile"] for c in expected} == expected
    assert {c: rows[c]["minutes_percentile"] for c in expected} == expected   # minutes = 3 x tasks
    assert {c: rows[c]["tasks_beat_pct"] for c in expected} == {"p1": 0, "p2": 25, "p3": 25, "p4": 75, "p5": 100}
    assert rows["p4"]["peer_phrase"] == "more tasks than 75% of Pro users"
    assert all(rows[c]["peer_cohort"] == "pro" and rows[c]["peer_cohort_size"] == 5 for c in expected)

    # free: 4 active customers (= k - 1): nothing comparative at all
    for c in ("f1", "f2", "f3", "f4"):
        r = rows[c]
        assert r["peer_cohort_size"] == 4
        assert (r["tasks_percentile"], r["minutes_percentile"], r["tasks_beat_pct"], r["peer_phrase"], r["tasks_bucket"]) == (
            None, None, None, None, None)
    assert rows["orphan"]["peer_cohort"] is None and rows["orphan"]["tasks_percentile"] is None
    assert rows["orphan"]["currency"] == "USD"
    assert summary.customers_compared == 5 and summary.cohorts_compared == 1

    dist = {r["metric"]: r for r in T.rows(con, "SELECT * FROM peer_distribution")}
    assert set(dist) == {"tasks", "minutes_saved"}
    assert {r["cohort"] for r in dist.values()} == {"pro"}
    # tasks 1, 2, 2, 3, 10 over [0,1) [1,2) [2,5) [5,10) [10,20)
    assert dist["tasks"]["bucket_edges"] == [0.0, 1.0, 2.0, 5.0, 10.0, 20.0]
    assert dist["tasks"]["counts"] == [0, 1, 3, 0, 1]
    # minutes 3, 6, 6, 9, 30 over ... [2,5) [5,10) [10,20) [20,50)
    assert dist["minutes_saved"]["bucket_edges"] == [0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0]
    assert dist["minutes_saved"]["counts"] == [0, 0, 1, 3, 0, 1]      # 6, 6 and 9 share [5,10)
    assert rows["p5"]["tasks_bucket"] == 4 and rows["p5"]["minutes_bucket"] == 5
    assert dist["tasks"]["cohort_size"] == 5


def test_the_default_k_is_50(con, tmp_path):
    cfg = T.config(tmp_path)
    for i in range(49):
        _customer(con, f"a{i:02d}", "pro", 1 + i)
    for i in range(50):
        _customer(con, f"b{i:02d}", "team", 1 + i % 7)
    compute_period_metrics(con, cfg, WEEK)
    rows = _rows(con)
    assert rows["a48"]["tasks_percentile"] is None and rows["a48"]["peer_cohort_size"] == 49
    assert rows["b00"]["tasks_percentile"] is not None and rows["b00"]["peer_cohort_size"] == 50
    assert {r[0] for r in con.execute("SELECT DISTINCT cohort FROM peer_distribution").fetchall()} == {"team"}


def test_cohort_columns_are_configurable(con, tmp_path):
    cfg = T.config(tmp_path, segments={"peer_min_cohort": 2, "peer_cohort_columns": ["plan", "country"]})
    _customer(con, "a", "pro", 1, "DE")
    _customer(con, "b", "pro", 5, "DE")
    _customer(con, "c", "pro", 9, "FR")
    compute_period_metrics(con, cfg, WEEK)
    rows = _rows(con)
    assert rows["a"]["peer_cohort"] == "pro · DE" and rows["b"]["tasks_percentile"] == 100.0
    assert rows["c"]["peer_cohort_size"] == 1 and rows["c"]["tasks_percentile"] is None
    assert rows["b"]["peer_phrase"] == "more tasks than 100% of Pro · DE users"

    with pytest.raises(ConfigError, match="no column"):
        compute_period_metrics(con, T.config(tmp_path, segments={"peer_cohort_columns": ["shoe_size"]}), WEEK)
    with pytest.raises(ConfigError, match="at least 2"):
        compute_period_metrics(con, T.config(tmp_path, segments={"peer_min_cohort": 1}), WEEK)


def test_ties_share_a_percentile_and_the_phrase_never_overstates(con, tmp_path):
    cfg = T.config(tmp_path, segments={"peer_min_cohort": 4})
    for cid, tasks in (("a", 1), ("b", 1), ("c", 2), ("d", 2)):
        _customer(con, cid, "pro", tasks)
    for i in range(3):                       # 7 customers: 100 * 1/6 = 16.67 -> "16%"
        _customer(con, f"t{i}", "team", i + 1)
    for i in range(4):
        _customer(con, f"u{i}", "team", 10 + i)
    compute_period_metrics(con, cfg, WEEK)
    rows = _rows(con)
    assert rows["a"]["tasks_percentile"] == rows["b"]["tasks_percentile"] == 0.0
    assert rows["c"]["tasks_percentile"] == rows["d"]["tasks_percentile"] == pytest.approx(200 / 3)
    assert rows["t1"]["tasks_percentile"] == pytest.approx(100 / 6) and rows["t1"]["tasks_beat_pct"] == 16


def test_bucket_edges_are_constants_not_anyones_value():
    assert EDGES[:8] == [0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
    assert bucket_of(0) == 0 and bucket_of(0.99) == 0 and bucket_of(1) == 1 and bucket_of(4.99) == 2 and bucket_of(5) == 3
    assert json.dumps(EDGES)  # serialisable for the chart engineer
