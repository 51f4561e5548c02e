"""KPIs per campaign and period: funnel counts, rates with their numerators, cohorts, chart, warning checks."""

import sys
from pathlib import Path

import dagster as dg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_delivery_support import PERIOD, decide, make_home  # noqa: E402
from test_engagement import _ingest, _write_events  # noqa: E402

from assets.kpis import build_kpi_assets  # noqa: E402
from delivery.kpis import chart_png, compute_kpis  # noqa: E402
from delivery.send import deliver_period  # noqa: E402
from pipelines.resources import ValuemailResource  # noqa: E402


@pytest.fixture()
def home_with_events(tmp_path):
    home = make_home(tmp_path, n=8, domain="gmail.com", emails={"c0007": "noreply@gmail.com"})
    decide(home)
    with home.con() as con:
        deliver_period(con, home.config, PERIOD)
        refs = {cid: (email, ref) for cid, email, ref in con.execute(
            "SELECT customer_id, email, split_part(split_part(message_id, '@', 1), '.', 4) FROM outbox").fetchall()}
        # usage events for retention: c0000..c0003 active in the previous week, c0000..c0001 again now
        con.execute("""INSERT INTO events SELECT 'e' || customer_id || p, customer_id, p::TIMESTAMP + INTERVAL 1 DAY,
                       'workflow_run', 1, NULL, NULL, NULL, NULL, true, 't', now()
                       FROM (VALUES ('c0000', DATE '2026-11-09'), ('c0001', DATE '2026-11-09'), ('c0002', DATE '2026-11-09'),
                                    ('c0003', DATE '2026-11-09'), ('c0000', DATE '2026-11-16'), ('c0001', DATE '2026-11-16')) v(customer_id, p)""")
    _write_events(home, refs)
    _ingest(home)
    return home


def test_funnel_rates_and_cohorts(home_with_events):
    home = home_with_events
    with home.con() as con, home.store() as store:
        k = compute_kpis(con, PERIOD, store=store)
        stored = dict(con.execute("SELECT metric, value FROM kpis WHERE campaign = 'weekly'").fetchall())
    assert k.counts["customers"] == 8 and k.counts["eligible"] == 7 and k.counts["sent"] == 7
    assert k.counts["skipped"] == 1 and k.counts["skipped_role_address"] == 1
    assert (k.counts["delivered"], k.counts["bounced"], k.counts["hard_bounced"]) == (3, 2, 1)
    assert (k.counts["complained"], k.counts["opened"], k.counts["clicked"], k.counts["unsubscribed"]) == (1, 1, 1, 1)
    assert k.rates["hard_bounce_rate"] == (1 / 7, 1, 7)
    assert k.rates["complaint_rate"] == (1 / 3, 1, 3)   # over delivered
    assert k.rates["open_rate"][0] == pytest.approx(1 / 3) and k.rates["click_to_open_rate"][0] == 1.0
    assert k.rates["retention_rate"] == (0.5, 2, 4) and k.rates["churn_rate"] == (0.5, 2, 4)
    assert stored["sent"] == 7 and stored["unsubscribe_rate"] == pytest.approx(1 / 3)
    assert chart_png(k)[:8] == b"\x89PNG\r\n\x1a\n"


def test_kpi_asset_has_a_chart_and_warns_on_complaints_and_hard_bounces(home_with_events):
    home = home_with_events
    result = dg.materialize(
        build_kpi_assets("weekly"), resources={"valuemail": ValuemailResource(home=str(home.path))},
        partition_key=PERIOD.key, raise_on_error=False)
    assert result.success
    meta = result.asset_materializations_for_node("weekly__kpis")[0].metadata
    assert meta["chart"].value.startswith("![send funnel and retention](data:image/png;base64,")
    assert meta["sent"].value == 7
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["complaint_rate_below_threshold"].passed is False   # 33 % >= 0.1 %
    assert checks["hard_bounce_rate_below_threshold"].passed is False  # 14 % >= 2 %
    assert checks["complaint_rate_below_threshold"].severity == dg.AssetCheckSeverity.WARN


def test_thresholds_are_configurable_and_quiet_below(tmp_path):
    home = make_home(tmp_path, n=3, domain="gmail.com")
    decide(home)
    with home.con() as con:
        deliver_period(con, home.config, PERIOD)
    result = dg.materialize(build_kpi_assets("weekly"), resources={"valuemail": ValuemailResource(home=str(home.path))},
                            partition_key=PERIOD.key)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["complaint_rate_below_threshold"].passed and checks["hard_bounce_rate_below_threshold"].passed
