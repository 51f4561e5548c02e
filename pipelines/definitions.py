"""The one Dagster ``Definitions`` of valuemail (``workspace.yaml`` loads this module)."""

from __future__ import annotations

import dagster as dg

from assets import all_assets
from pipelines.jobs import build_jobs
from pipelines.resources import ValuemailResource

defs = dg.Definitions(
    assets=all_assets(),
    jobs=build_jobs(),
    resources={"valuemail": ValuemailResource()},
)
