"""The value model as configured, as a versioned warehouse table, and its exact unit conversions."""

from decimal import Decimal

import pytest

from metrics import testing as T
from metrics.settings import MetricsSettings
from metrics.value_model import explain_rows, m4_per_unit, register_value_model, s4_per_unit, sync_value_model
from valuemail.config import ConfigError


def test_every_event_type_is_documented_and_versioned(tmp_path):
    cfg = T.config(tmp_path)
    model = cfg.value_model
    con = T.warehouse()
    assert sync_value_model(con, model) == len(model.events)
    sync_value_model(con, model)  # idempotent per version
    rows = con.execute("SELECT version, count(*), count(*) FILTER (WHERE explain <> '') FROM value_model GROUP BY 1").fetchall()
    assert rows == [(model.version, len(model.events), len(model.events))]
    assert all(r["explain"] and r["feature"] for r in explain_rows(model))
    assert register_value_model(con, model) == len(model.events)


def test_unit_conversions_are_exact():
    assert s4_per_unit(Decimal("3")) == 1_800_000            # 3 min = 180 s = 1,800,000 x 1/10,000 s
    assert s4_per_unit(Decimal("0.3333")) == 199_980
    assert m4_per_unit(Decimal("1.50")) == 15_000
    assert m4_per_unit(Decimal("0.00005")) == 1              # beyond 4 decimals: half up


def test_settings_defaults_and_validation(tmp_path):
    s = MetricsSettings.from_config(T.config(tmp_path))
    assert (s.peer_min_cohort, s.peer_cohort_columns, s.milestones[:3]) == (50, ("plan",), (100, 1000, 10000))
    assert (s.new_days, s.active_days, s.lapsed_days, s.engagement_lookback_days) == (30, 30, 90, 90)
    with pytest.raises(ConfigError):
        MetricsSettings.from_config(T.config(tmp_path, segments={"active_days": 100, "lapsed_days": 90}))
    with pytest.raises(ConfigError):
        MetricsSettings.from_config(T.config(tmp_path, metrics={"milestones": [0, 10]}))
    with pytest.raises(ConfigError):
        MetricsSettings.from_config(T.config(tmp_path, segments={"peer_cohort_columns": ["plan; DROP TABLE x"]}))
