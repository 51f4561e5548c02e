"""The metrics and segments knobs, read from the configuration with documented defaults.

Keys live in ``[segments]`` (lifecycle thresholds, peer comparisons, engagement tier) and
``[metrics]`` (milestones) of ``config/valuemail.toml``; any key missing there falls back
to the default below, so an older config file keeps working.  See ``metrics/README.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from valuemail.config import Config, ConfigError

DEFAULT_MILESTONES = (100, 1_000, 10_000, 100_000, 1_000_000)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class MetricsSettings:
    milestones: tuple[int, ...] = DEFAULT_MILESTONES
    peer_min_cohort: int = 50
    peer_cohort_columns: tuple[str, ...] = ("plan",)
    new_days: int = 30
    active_days: int = 30
    lapsed_days: int = 90
    engagement_lookback_days: int = 90
    duckdb_memory_limit: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> "MetricsSettings":
        seg = config.section("segments")
        met = config.section("metrics")
        try:
            milestones = tuple(sorted({int(m) for m in met.get("milestones", DEFAULT_MILESTONES)}))
            settings = cls(
                milestones=milestones,
                peer_min_cohort=int(seg.get("peer_min_cohort", 50)),
                peer_cohort_columns=tuple(str(c) for c in seg.get("peer_cohort_columns", ["plan"])),
                new_days=int(seg.get("new_days", 30)),
                active_days=int(seg.get("active_days", 30)),
                lapsed_days=int(seg.get("lapsed_days", 90)),
                engagement_lookback_days=int(seg.get("engagement_lookback_days", 90)),
                duckdb_memory_limit=met.get("duckdb_memory_limit") or None,
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[segments]/[metrics]: {exc}") from None
        if any(m <= 0 for m in settings.milestones):
            raise ConfigError("metrics.milestones must be positive task counts")
        if settings.peer_min_cohort < 2:
            raise ConfigError("segments.peer_min_cohort must be at least 2 (a cohort of one compares a customer with nobody)")
        if not settings.peer_cohort_columns:
            raise ConfigError("segments.peer_cohort_columns must name at least one customers column (e.g. plan)")
        for column in settings.peer_cohort_columns:
            if not _IDENT.match(column):
                raise ConfigError(f"segments.peer_cohort_columns: {column!r} is not a column name")
        if not 0 <= settings.active_days <= settings.lapsed_days:
            raise ConfigError("segments: need 0 <= active_days <= lapsed_days")
        if settings.new_days < 0 or settings.engagement_lookback_days <= 0:
            raise ConfigError("segments: new_days must be >= 0 and engagement_lookback_days > 0")
        return settings
