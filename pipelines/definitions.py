"""The one Dagster ``Definitions`` of valuemail (``workspace.yaml`` loads this module)."""

from __future__ import annotations

import dagster as dg

from assets import all_assets
from pipelines.jobs import build_jobs
from pipelines.resources import ValuemailResource
from pipelines.schedules import build_schedules
from pipelines.sensors import build_delivery_sensors, build_landing_sensor
from valuemail.config import load_config

_config = load_config()  # $VALUEMAIL_CONFIG / embedded defaults: schedule times, sensor interval

defs = dg.Definitions(
    assets=all_assets(),
    jobs=build_jobs(),
    schedules=build_schedules(_config),
    sensors=[
        build_landing_sensor(int(_config.section("schedules")["landing_sensor_interval_s"])),
        *build_delivery_sensors(),
    ],
    resources={"valuemail": ValuemailResource()},
)
