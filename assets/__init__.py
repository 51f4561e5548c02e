"""Thin Dagster assets, one module per stage: read → call pure code → write → metadata."""

from __future__ import annotations

import dagster as dg

from assets.delivery import build_delivery_assets
from assets.emails import build_email_assets
from assets.ingest import ingested_files
from assets.metrics import build_metrics_assets
from valuemail.periods import CAMPAIGNS


def all_assets() -> list[dg.AssetsDefinition]:
    """Every asset and asset check (checks are AssetsDefinitions too), ingest first."""
    assets: list[dg.AssetsDefinition] = [ingested_files]
    for campaign in CAMPAIGNS:
        assets += build_metrics_assets(campaign)
        assets += build_email_assets(campaign)
        assets += build_delivery_assets(campaign)
    return assets

