"""CLI commands that live in their own modules, and the checks they share."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from valuemail.config import Config
from valuemail.periods import Period, resolve_period


def period_argument(config: Config, campaign: str, period: str | None) -> Period:
    """``--period`` as a Period (default: the last complete one), or a usage error naming it
    (not a date, or outside the periods there are)."""
    try:
        return resolve_period(config, campaign, period, datetime.now(timezone.utc))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None


def require_warehouse(config: Config) -> None:
    if not config.warehouse_path.exists():
        raise click.ClickException(f"no warehouse at {config.warehouse_path}: run `valuemail run` first")
