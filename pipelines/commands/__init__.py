"""CLI commands that live in their own modules, and the checks they share."""

from __future__ import annotations

import click

from valuemail.config import Config
from valuemail.periods import Period, last_complete_period, parse_period


def period_argument(campaign: str, period: str | None) -> Period:
    """``--period`` as a Period (default: the last complete one), or a usage error naming it."""
    try:
        return parse_period(campaign, period) if period else last_complete_period(campaign)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None


def require_warehouse(config: Config) -> None:
    if not config.warehouse_path.exists():
        raise click.ClickException(f"no warehouse at {config.warehouse_path}: run `valuemail run` first")
