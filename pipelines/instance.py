"""The local Dagster instance under ``<home>/dagster``: runs started from the CLI show up in the UI."""

from __future__ import annotations

import os
from pathlib import Path

from valuemail.config import Config

DAGSTER_YAML = """\
# Written by valuemail. Assets that write the DuckDB warehouse share the pool
# "duckdb_writer"; one slot means parallel runs queue instead of fighting for the lock.
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


def prepare_dagster_home(config: Config) -> Path:
    """$DAGSTER_HOME when set; else ``<home>/dagster``, with its ``dagster.yaml`` written if missing."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = config.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    yaml = home / "dagster.yaml"
    if not yaml.exists():
        yaml.write_text(DAGSTER_YAML)
    return home
