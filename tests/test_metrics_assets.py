"""The thin Dagster assets: materialise with a temp DuckDB, checks run and block downstream."""

import base64
import re
import warnings

import dagster as dg
import pytest

from assets.metrics import build_metrics_assets
from assets.segments import build_segments_assets
from metrics import testing as T
from pipelines.resources import WRITER_POOL, ValuemailResource

CHECKS = {"no_negative_values", "totals_reconcile", "every_active_customer_has_row", "peer_privacy"}


@pytest.fixture
def home(tmp_path):
    con = T.warehouse(str(tmp_path / "valuemail.duckdb"))
    T.add_customer(con, "a", plan="pro", hourly_rate=42)
    T.add_customer(con, "b", plan="pro", currency="EUR")
    T.add_customer(con, "c", plan="free")
    T.add_event(con, "a", "2026-11-16 09:00:00", quantity=4)
    T.add_event(con, "b", "2026-11-18 09:00:00", "subscription_audit", amount_saved="19.99", currency="EUR")
    T.add_event(con, "b", "2026-11-19 09:00:00", "mystery_feature", known=False)
    T.add_email_event(con, "open", "2026-11-10", customer_id="a", message_id="m")
    con.close()
    return tmp_path


def _materialize(home, assets, partition="2026-11-16", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.materialize(assets, resources={"valuemail": ValuemailResource(home=str(home))},
                              partition_key=partition, **kw)


def test_materialise_weekly_metrics_and_segments(home):
    result = _materialize(home, build_metrics_assets("weekly") + build_segments_assets("weekly"))
    assert result.success
    evaluations = {(tuple(e.asset_key.path), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {**{(("weekly", "customer_metrics"), c): True for c in CHECKS},
                           (("weekly", "segments"), "one_row_per_customer"): True}
    mats = {tuple(m.asset_key.path): m.materialization.metadata for m in result.get_asset_materialization_events()}
    md = mats[("weekly", "customer_metrics")]
    assert md["dagster/row_count"].value == 2
    assert md["unknown_event_types"].value == {"mystery_feature": 1}
    assert md["money_saved_by_currency"].value == {"EUR": "19.99", "USD": "8.40"}   # 12 min at 42/h
    for key in ("distribution", "preview", "tasks_histogram", "value_model_version", "timings_s"):
        assert key in md
    png = re.search(r"base64,([A-Za-z0-9+/=]+)\)", md["tasks_histogram"].value).group(1)
    assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 60_000
    assert mats[("weekly", "peer_distribution")]["dagster/row_count"].value == 0
    seg = mats[("weekly", "segments")]
    assert seg["dagster/row_count"].value == 3 and seg["by_tier"].value == {"silent": 2, "opened": 1}


def test_yearly_partition_materialises(home):
    result = _materialize(home, build_metrics_assets("yearly"), partition="2026-01-01")
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())


def test_a_failed_blocking_check_stops_downstream_assets(home):
    con = T.warehouse(str(home / "valuemail.duckdb"))
    T.add_event(con, "c", "2026-11-20 09:00:00", duration_saved_s=-60)   # a negative measurement slipped in
    con.close()

    @dg.asset(key=["weekly", "downstream"], deps=[dg.AssetKey(["weekly", "customer_metrics"])],
              partitions_def=build_metrics_assets("weekly")[0].partitions_def)
    def downstream() -> None:
        raise AssertionError("must not run after a failed blocking check")

    result = _materialize(home, build_metrics_assets("weekly") + [downstream], raise_on_error=False)
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert "no_negative_values" in failed
    assert ("weekly", "downstream") not in {tuple(m.asset_key.path) for m in result.get_asset_materialization_events()}


def test_definitions_expose_metrics_segments_and_checks():
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    for campaign in ("weekly", "monthly", "yearly"):
        for name, group in (("customer_metrics", "metrics"), ("peer_distribution", "metrics"), ("segments", "segments")):
            node = graph.get(dg.AssetKey([campaign, name]))
            assert node.group_name == group and node.partitions_def is not None
            assert "duckdb" in node.kinds and node.owners
        check_names = {k.name for k in graph.asset_check_keys if k.asset_key == dg.AssetKey([campaign, "customer_metrics"])}
        assert CHECKS <= check_names
        assert all(graph.get(k).blocking for k in graph.asset_check_keys
                   if k.asset_key in (dg.AssetKey([campaign, "customer_metrics"]), dg.AssetKey([campaign, "segments"])))
    assert build_metrics_assets("weekly")[0].op.pool == WRITER_POOL
    assert build_segments_assets("weekly")[0].op.pool == WRITER_POOL
