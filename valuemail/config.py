"""Configuration: the embedded defaults in ``config/valuemail.toml`` merged with a user file.

Pure code (no Dagster).  Everything downstream takes a :class:`Config`; nothing reads
environment variables except :func:`load_config` and :func:`resolve_home`.
"""

from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

_REPO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "valuemail.toml"
_WHEEL_CONFIG = Path(__file__).resolve().parent / "_default_config" / "valuemail.toml"
DEFAULT_CONFIG_PATH = _REPO_CONFIG if _REPO_CONFIG.exists() else _WHEEL_CONFIG

HOME_ENV = "VALUEMAIL_HOME"
CONFIG_ENV = "VALUEMAIL_CONFIG"


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or has a bad value (the message names it)."""


@dataclass(frozen=True)
class EventValue:
    """How one event type is valued: the documented value model, one row of it."""

    event_type: str
    feature: str
    task: bool
    minutes_per_unit: Decimal = Decimal(0)
    money_per_unit: Decimal = Decimal(0)
    explain: str = ""


@dataclass(frozen=True)
class ValueModel:
    version: str
    currency: str
    price_time_at_hourly_rate: bool
    events: Mapping[str, EventValue]

    def is_known(self, event_type: str) -> bool:
        return event_type in self.events


@dataclass(frozen=True)
class Config:
    """The merged configuration plus the home folder it applies to."""

    home: Path
    raw: Mapping[str, Any] = field(repr=False)
    source: tuple[str, ...] = ()

    # -- paths -----------------------------------------------------------------
    def path(self, key: str) -> Path:
        value = Path(self.raw["paths"][key])
        return value if value.is_absolute() else self.home / value

    @property
    def warehouse_path(self) -> Path:
        return self.path("warehouse")

    @property
    def landing_dir(self) -> Path:
        return self.path("landing")

    @property
    def outbox_dir(self) -> Path:
        return self.path("outbox")

    @property
    def charts_dir(self) -> Path:
        return self.path("charts")

    @property
    def share_dir(self) -> Path:
        return self.path("share")

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    def section(self, name: str) -> Mapping[str, Any]:
        return self.raw.get(name, {})

    # -- value model -----------------------------------------------------------
    @property
    def value_model(self) -> ValueModel:
        vm = self.raw["value_model"]
        events = {}
        for event_type, spec in vm.get("events", {}).items():
            try:
                events[event_type] = EventValue(
                    event_type=event_type,
                    feature=str(spec["feature"]),
                    task=bool(spec.get("task", False)),
                    minutes_per_unit=Decimal(str(spec.get("minutes_per_unit", 0))),
                    money_per_unit=Decimal(str(spec.get("money_per_unit", 0))),
                    explain=str(spec.get("explain", "")),
                )
            except KeyError as exc:
                raise ConfigError(
                    f"value_model.events.{event_type}: missing key {exc.args[0]!r} ({', '.join(self.source)})"
                ) from None
            if events[event_type].minutes_per_unit < 0 or events[event_type].money_per_unit < 0:
                raise ConfigError(f"value_model.events.{event_type}: values saved per unit must be >= 0")
        return ValueModel(
            version=str(vm["version"]),
            currency=str(vm["currency"]).upper(),
            price_time_at_hourly_rate=bool(vm.get("price_time_at_hourly_rate", True)),
            events=events,
        )


def _merge(base: dict, override: Mapping) -> dict:
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    return Path(home or os.environ.get(HOME_ENV) or "data").resolve()


def load_config(
    config_file: str | os.PathLike | None = None,
    home: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Defaults, then ``config_file`` (or $VALUEMAIL_CONFIG), then ``overrides`` (tests)."""
    raw = _read_toml(DEFAULT_CONFIG_PATH)
    sources = [str(DEFAULT_CONFIG_PATH)]
    config_file = config_file or os.environ.get(CONFIG_ENV)
    if config_file:
        _merge(raw, _read_toml(Path(config_file)))
        sources.append(str(config_file))
    if overrides:
        _merge(raw, overrides)
    config = Config(home=resolve_home(home), raw=raw, source=tuple(sources))
    config.value_model  # validate eagerly: a bad value model fails at load, naming the key
    return config
