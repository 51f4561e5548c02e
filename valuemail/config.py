"""Configuration: the embedded defaults in ``config/valuemail.toml`` merged with a user file.

Pure code (no Dagster).  Everything downstream takes a :class:`Config`, validated at load
against the typed model in :mod:`valuemail.config_schema`: a bad value or an unknown key is a
:class:`ConfigError` naming the file, the key and what is allowed.  ``VALUEMAIL_HOME``,
``VALUEMAIL_CONFIG`` and ``VALUEMAIL_MODE`` are read here (the preference centre's secret and
store URL variables in :mod:`preference_centre.settings` / ``store``).
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, get_args, get_origin

from pydantic import BaseModel, ValidationError

from valuemail.config_schema import Settings

_REPO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "valuemail.toml"
_WHEEL_CONFIG = Path(__file__).resolve().parent / "_default_config" / "valuemail.toml"
DEFAULT_CONFIG_PATH = _REPO_CONFIG if _REPO_CONFIG.exists() else _WHEEL_CONFIG

HOME_ENV = "VALUEMAIL_HOME"
CONFIG_ENV = "VALUEMAIL_CONFIG"
MODE_ENV = "VALUEMAIL_MODE"


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
    """The merged configuration plus the home folder it applies to.

    ``raw`` is the merged TOML as dicts (what ``section()`` returns); ``settings`` is the same,
    validated and typed (``config.settings.ingest.future_tolerance_hours``).
    """

    home: Path
    raw: Mapping[str, Any] = field(repr=False)
    settings: Settings = field(repr=False)
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

    def mode(self, environ: Mapping[str, str] | None = None) -> Literal["development", "production"]:
        """``$VALUEMAIL_MODE``, else ``preference_centre.mode``."""
        env = os.environ if environ is None else environ
        mode = str(env.get(MODE_ENV) or self.settings.preference_centre.mode).strip().lower()
        if mode not in ("development", "production"):
            raise ConfigError(f"${MODE_ENV}: expected 'development' or 'production', got {mode!r}")
        return mode  # type: ignore[return-value]

    # -- value model -----------------------------------------------------------
    @property
    def value_model(self) -> ValueModel:
        vm = self.settings.value_model
        return ValueModel(
            version=vm.version,
            currency=vm.currency.upper(),
            price_time_at_hourly_rate=vm.price_time_at_hourly_rate,
            events={
                name: EventValue(event_type=name, feature=spec.feature, task=spec.task,
                                 minutes_per_unit=spec.minutes_per_unit, money_per_unit=spec.money_per_unit,
                                 explain=spec.explain)
                for name, spec in vm.events.items()
            },
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
    """Defaults, then ``config_file`` (or $VALUEMAIL_CONFIG), then ``overrides`` (tests), validated."""
    layers = [(str(DEFAULT_CONFIG_PATH), _read_toml(DEFAULT_CONFIG_PATH))]
    config_file = config_file or os.environ.get(CONFIG_ENV)
    if config_file:
        layers.append((str(config_file), _read_toml(Path(config_file))))
    if overrides:
        layers.append(("overrides", overrides))
    raw: dict = {}
    for _, layer in layers:
        _merge(raw, layer)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems = [_problem(error, layers) for error in exc.errors()]
        if len(problems) == 1:
            raise ConfigError(problems[0]) from None
        raise ConfigError(f"{len(problems)} configuration problems:\n" + "\n".join(f"  {p}" for p in problems)) from None
    sources = tuple(name for name, _ in layers if name != "overrides")
    return Config(home=resolve_home(home), raw=raw, settings=settings, source=sources)


# -- error messages: "<file>: [section] key: what is wrong (allowed: ...)" ---------------------------
def _problem(error: Mapping[str, Any], layers: list[tuple[str, Mapping]]) -> str:
    loc = error["loc"]
    model, annotation, metadata, description = _field_at(loc)
    if error["type"] == "extra_forbidden":
        known = list(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(known)}"
        what = f"unknown {'section' if len(loc) == 1 else 'key'} ({hint})"
    elif error["type"] == "value_error":
        what = str(error["ctx"]["error"])
    else:
        got = "missing" if error["type"] == "missing" else f"got {json.dumps(error['input'], default=str)}"
        what = f"{got} (allowed: {_allowed(annotation, metadata, description)})"
    return f"{_origin(loc, layers)}: {_where(loc)}: {what}"


def _where(loc: tuple) -> str:
    """``[section.sub] key[index]`` for a pydantic location."""
    names = [i for i, part in enumerate(loc) if isinstance(part, str)]
    if len(names) == 1:
        return f"[{loc[0]}]" + "".join(f"[{i}]" for i in loc[1:])
    last = names[-1]
    return f"[{'.'.join(str(p) for p in loc[:last])}] " + str(loc[last]) + "".join(f"[{i}]" for i in loc[last + 1:])


def _origin(loc: tuple, layers: list[tuple[str, Mapping]]) -> str:
    """The last layer (file) that sets ``loc`` — or, for a missing key, its closest parent."""
    for depth in range(len(loc), 0, -1):
        for name, layer in reversed(layers):
            node: Any = layer
            try:
                for part in loc[:depth]:
                    node = node[part]
            except (KeyError, IndexError, TypeError):
                continue
            return name
    return layers[-1][0]


def _unwrap(annotation: Any) -> tuple[Any, list, str | None]:
    """``Annotated[int, Field(gt=0)]`` → (int, [Gt(0)], description)."""
    if get_origin(annotation) is not Annotated:
        return annotation, [], None
    base, *extras = get_args(annotation)
    metadata = [m for extra in extras for m in getattr(extra, "metadata", [extra])]
    descriptions = [d for extra in extras if (d := getattr(extra, "description", None))]
    return base, metadata, (descriptions[0] if descriptions else None)


def _field_at(loc: tuple) -> tuple[type[BaseModel] | None, Any, list, str | None]:
    """The model holding ``loc``'s last key, and that key's type, constraints and description."""
    model, annotation, metadata, description = None, Settings, [], None
    for part in loc:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            if part not in model.model_fields:
                return model, None, [], None
            info = model.model_fields[part]
            annotation, metadata, description = info.annotation, info.metadata, info.description
        elif get_origin(annotation) in (list, dict):
            annotation, metadata, description = _unwrap(get_args(annotation)[-1])
    return model, annotation, metadata, description


def _allowed(annotation: Any, metadata: list, description: str | None) -> str:
    """What a value may be, in words: "an integer from 0 to 23", "'cid' | 'hosted'"…"""
    if description:
        return description
    if get_origin(annotation) is Literal:
        return " | ".join(repr(a) for a in get_args(annotation))
    if annotation is bool:
        return "true or false"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"a table with the keys {', '.join(annotation.model_fields)}"
    if get_origin(annotation) is list:
        item = _allowed(*_unwrap(get_args(annotation)[0]))
        return f"a list, each {item}"
    if get_origin(annotation) is dict:
        return "a table"
    bounds = {name: getattr(m, name) for m in metadata for name in ("ge", "gt", "le", "min_length") if hasattr(m, name)}
    if annotation is str:
        return "a non-empty string" if bounds.get("min_length") else "a string"
    word = "integer" if annotation is int else "number"
    article = "an" if word == "integer" else "a"
    low = bounds.get("ge")
    if low is not None and "le" in bounds:
        return f"{article} {word} from {low} to {bounds['le']}"
    if bounds.get("gt") == 0 or (word == "integer" and low == 1):
        return f"a positive {word}"
    if low == 0:
        return f"{article} {word}, 0 or more"
    if low is not None:
        return f"{article} {word} of at least {low}"
    return f"{article} {word}"
