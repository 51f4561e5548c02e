import os
import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel

from valuemail import config as config_module
from valuemail.config import ConfigError, load_config
from valuemail.config_schema import Settings


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


# -- typed validation at load: every value checked, every problem named with its file -------------
VALUEMAIL = Path(sys.executable).parent / "valuemail"


def _user_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return path


def _defaults_in_model(model: type[BaseModel], toml: dict, where: str = "") -> list[tuple[str, object, object]]:
    """(key, model default, TOML value) for every modelled default the shipped TOML also sets."""
    pairs = []
    for name, field in model.model_fields.items():
        if name not in toml:
            continue
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            pairs += _defaults_in_model(field.annotation, toml[name], f"{where}{name}.")
        elif not field.is_required():
            pairs.append((where + name, field.get_default(), toml[name]))
    return pairs


def test_shipped_defaults_validate_and_the_model_repeats_none_of_them_differently(tmp_path):
    config = load_config(home=tmp_path)
    assert config.settings.ingest.future_tolerance_hours == 24
    assert config.settings.delivery.smtp.port == 25
    assert config.settings.value_model.events["document_signed"].money_per_unit == Decimal("1.50")
    with config_module.DEFAULT_CONFIG_PATH.open("rb") as fh:
        shipped = tomllib.load(fh)
    assert [(k, d, t) for k, d, t in _defaults_in_model(Settings, shipped) if d != t] == []


@pytest.mark.parametrize(
    ("text", "key", "allowed"),
    [
        ("[ingest]\nfuture_tolerance_hours = 100000000\n", "[ingest] future_tolerance_hours", "from 0 to 8760"),
        ('[ingest]\nfuture_tolerance_hours = "24"\n', "[ingest] future_tolerance_hours", "from 0 to 8760"),
        ("[ingest]\nbatch_rows = 0\n", "[ingest] batch_rows", "a positive integer"),
        ('[ingest]\nmemory_limit = "lots"\n', "[ingest] memory_limit", "'3GB'"),
        ("[schedules]\nhour = 24\n", "[schedules] hour", "from 0 to 23"),
        ('[schedules]\nyearly_on = "12/01"\n', "[schedules] yearly_on", "MM-DD"),
        ('[delivery]\ntransport = "pigeon"\n', "[delivery] transport", "'file' | 'smtp' | 'ses'"),
        ("[delivery]\ncomplaint_rate_warn = 5\n", "[delivery] complaint_rate_warn", "from 0 to 1"),
        ("[delivery.smtp]\nport = 0\n", "[delivery.smtp] port", "from 1 to 65535"),
        ("[delivery.smtp]\nverify_tls = 1\n", "[delivery.smtp] verify_tls", "true or false"),
        ("[segments]\npeer_min_cohort = 1\n", "[segments] peer_min_cohort", "at least 2"),
        ("[metrics]\nmilestones = [100, -5]\n", "[metrics] milestones[1]", "a positive integer"),
        ('[preference_centre]\nmode = "staging"\n', "[preference_centre] mode", "'development' | 'production'"),
        ("[value_model.events.workflow_run]\nminutes_per_unit = -1\n", "[value_model.events.workflow_run] minutes_per_unit",
         "0 or more"),
        ('[value_model.events.new_thing]\ntask = true\n', "[value_model.events.new_thing] feature", "a non-empty string"),
    ],
)
def test_a_bad_value_names_the_file_the_key_and_what_is_allowed(tmp_path, text, key, allowed):
    user = _user_file(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(user, home=tmp_path)
    message = str(exc.value)
    assert message.startswith(f"{user}: {key}: ") and allowed in message.partition("(allowed: ")[2], message
    assert "\n" not in message  # one problem, one line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[ingest]\nfuture_tolerence_hours = 1\n", "[ingest] future_tolerence_hours: unknown key (did you mean 'future_tolerance_hours'?)"),
        ("[ingset]\nreaders = 1\n", "[ingset]: unknown section (did you mean 'ingest'?)"),
        ("[delivery.smtp]\nprot = 587\n", "[delivery.smtp] prot: unknown key (did you mean 'port'?)"),
        ("[value_model.events.login]\nfeatures = 'x'\n", "[value_model.events.login] features: unknown key (did you mean 'feature'?)"),
    ],
)
def test_an_unknown_key_is_an_error_with_a_suggestion(tmp_path, text, expected):
    user = _user_file(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(user, home=tmp_path)
    assert str(exc.value) == f"{user}: {expected}"


def test_an_unknown_key_without_a_close_match_lists_the_known_ones(tmp_path):
    user = _user_file(tmp_path, "[schedules]\nzzz = 1\n")
    with pytest.raises(ConfigError, match=r"\[schedules\] zzz: unknown key \(allowed: weekly, monthly, yearly_on, "):
        load_config(user, home=tmp_path)


def test_every_problem_is_listed_naming_the_file_it_came_from(tmp_path, monkeypatch):
    defaults = tmp_path / "defaults.toml"
    defaults.write_text(config_module.DEFAULT_CONFIG_PATH.read_text().replace("hour = 6\n", "hour = -1\n"))
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", defaults)
    user = _user_file(tmp_path, "[ingest]\nreaders = -1\n[delivery]\nbatch_sise = 5\n")
    with pytest.raises(ConfigError) as exc:
        load_config(user, home=tmp_path, overrides={"delivery": {"max_attempts": 0}})
    lines = str(exc.value).splitlines()
    assert lines[0] == "4 configuration problems:"
    assert sorted(line.split(": [")[0].strip() for line in lines[1:]) == sorted([str(defaults), str(user), str(user),
                                                                                 "overrides"])
    assert any(line.strip().startswith(f"{defaults}: [schedules] hour: got -1") for line in lines)


def test_cross_key_rules_are_checked_at_load(tmp_path):
    user = _user_file(tmp_path, "[segments]\nactive_days = 100\n")
    with pytest.raises(ConfigError, match=r"mine.toml: \[segments\]: active_days \(100\) must not exceed lapsed_days \(90\)"):
        load_config(user, home=tmp_path)
    user = _user_file(tmp_path, "[delivery]\nsunset_to_none_after = 3\n")
    with pytest.raises(ConfigError, match=r"mine.toml: \[delivery\]: sunset_to_none_after \(3\) must not be below "):
        load_config(user, home=tmp_path)


def _valuemail(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VALUEMAIL_")}
    return subprocess.run([str(VALUEMAIL), *args], capture_output=True, text=True, env={**clean, **(env or {})},
                          timeout=300)


def test_an_overflowing_tolerance_is_refused_before_ingest_touches_the_warehouse(tmp_path):
    home, landing = tmp_path / "home", tmp_path / "landing"
    landing.mkdir()
    user = _user_file(tmp_path, "[ingest]\nfuture_tolerance_hours = 100000000\n")
    out = _valuemail("--home", str(home), "--config", str(user), "ingest", str(landing))
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip() == (f"Error: {user}: [ingest] future_tolerance_hours: got 100000000 "
                                  "(allowed: a number from 0 to 8760)")
    assert not (home / "valuemail.duckdb").exists()


def test_production_never_invents_customers(tmp_path):
    home = tmp_path / "empty"
    env = {"VALUEMAIL_MODE": "production", "VALUEMAIL_SECRET": "s" * 40}
    out = _valuemail("--home", str(home), "run", "--campaign", "weekly", env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    message = out.stderr.strip()
    assert message.startswith("Error: ") and "\n" not in message, message
    assert "production" in message and "sample" in message and str(home / "landing") in message
    assert "valuemail ingest" in message  # says what to do
    assert not (home / "landing").exists() and not (home / "valuemail.duckdb").exists()
    backfill = _valuemail("--home", str(home), "backfill", "--campaign", "weekly", "--from", "2026-11-16",
                          "--to", "2026-11-23", env=env)
    assert backfill.returncode == 1 and "production" in backfill.stderr and not (home / "landing").exists()


def test_a_configured_s3_landing_is_not_an_empty_home(tmp_path, monkeypatch):
    from pipelines.runner import _prepare

    monkeypatch.setenv("VALUEMAIL_MODE", "production")
    config = load_config(home=tmp_path, overrides={"paths": {"landing_s3": "s3://events/landing/"}})
    _prepare(config, 10, print)  # the job ingests the S3 prefix: neither a refusal nor sample customers
    assert not config.landing_dir.exists()


def test_the_mode_comes_from_the_environment_first_and_a_typo_is_an_error(tmp_path):
    config = load_config(home=tmp_path, overrides={"preference_centre": {"mode": "production"}})
    assert config.mode({}) == "production"
    assert config.mode({"VALUEMAIL_MODE": " Development "}) == "development"
    with pytest.raises(ConfigError, match=r"^\$VALUEMAIL_MODE: expected 'development' or 'production', got 'prod'$"):
        config.mode({"VALUEMAIL_MODE": "prod"})  # not silently development: that would invent customers
