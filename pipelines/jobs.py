"""One job per campaign: ingest → metrics → segments → charts → e-mails → eligibility → send → KPIs."""

from __future__ import annotations

import dagster as dg

# Run tag with the run's data cut-off (YYYY-MM-DD, exclusive), set by the schedules and the CLI:
# a period that has not ended by then is measured up to it (valuemail.periods.Period.as_of).
CUTOFF_TAG = "valuemail/cutoff"
# Run tag "true": send a period whose send window has closed (delivery/window.py); `valuemail
# run/backfill --allow-late` set it; in the UI add it to the launch (or backfill) tags.
ALLOW_LATE_TAG = "valuemail/allow_late"

JOB_NAMES = {"weekly": "weekly_value_email", "monthly": "monthly_value_email", "yearly": "yearly_wrapped"}


def campaign_selection(campaign: str) -> dg.AssetSelection:
    """Ingest (unpartitioned; it loads whatever is new) plus every asset of the campaign."""
    return dg.AssetSelection.groups("ingest") | dg.AssetSelection.key_prefixes([campaign])


def build_jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        dg.define_asset_job(
            name,
            selection=campaign_selection(campaign),
            description=f"The {campaign} value e-mail for one period: ingest, metrics, segments, eligibility, "
            "charts, e-mails, sending, KPIs.",
            tags={"campaign": campaign},
        )
        for campaign, name in JOB_NAMES.items()
    ] + [dg.define_asset_job("ingest", selection=dg.AssetSelection.groups("ingest"), description="Ingest new landing files.")]
