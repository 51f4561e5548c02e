"""Thin Dagster assets, one module per stage: read → call pure code → write → metadata."""

from __future__ import annotations

import dagster as dg

from assets.delivery import build_delivery_assets
from assets.emails import build_email_assets
from assets.engagement import email_events
from assets.ingest import ingested_files
from assets.kpis import build_kpi_assets
from assets.metrics import build_metrics_assets
from assets.segments import build_segments_assets
from valuemail.periods import CAMPAIGNS


def all_assets() -> list[dg.AssetsDefinition]:
    """Every asset and asset check (checks are AssetsDefinitions too), ingest first."""
    assets: list[dg.AssetsDefinition] = [ingested_files, email_events]
    for campaign in CAMPAIGNS:
        assets += build_metrics_assets(campaign) + build_segments_assets(campaign)
        assets += build_email_assets(campaign)
        assets += build_delivery_assets(campaign) + build_kpi_assets(campaign)
    return assets

