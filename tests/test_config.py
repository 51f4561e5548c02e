from decimal import Decimal

import pytest

from valuemail.config import ConfigError, load_config


def test_defaults_load_and_value_model_is_typed(tmp_path):
    config = load_config(home=tmp_path)
    model = config.value_model
    assert model.currency == "USD"
    run = model.events["workflow_run"]
    assert run.task and run.minutes_per_unit == Decimal(3)
    assert not model.events["login"].task
    assert config.warehouse_path == tmp_path / "valuemail.duckdb"


def test_user_file_is_merged_key_by_key(tmp_path):
    user = tmp_path / "mine.toml"
    user.write_text('[delivery]\ndomain_daily_cap = 5\n[value_model.events.workflow_run]\nminutes_per_unit = 4\n')
    config = load_config(user, home=tmp_path)
    assert config.section("delivery")["domain_daily_cap"] == 5
    assert config.section("delivery")["transport"] == "file"  # untouched default survives
    assert config.value_model.events["workflow_run"].minutes_per_unit == Decimal(4)
    assert config.value_model.events["workflow_run"].feature == "Automated workflows"


def test_bad_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", home=tmp_path)
    broken = tmp_path / "broken.toml"
    broken.write_text("[delivery\n")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_config(broken, home=tmp_path)


def test_negative_value_model_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="workflow_run"):
        load_config(home=tmp_path, overrides={"value_model": {"events": {"workflow_run": {"minutes_per_unit": -1}}}})
