"""The one resource every asset uses: the valuemail configuration and its warehouse."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import dagster as dg
import duckdb

from valuemail.config import Config, load_config
from valuemail.warehouse import open_warehouse

# Assets that write the DuckDB file share this pool; the instance limits it to one slot
# (dagster.yaml written by `valuemail run`), so parallel runs queue instead of failing on
# DuckDB's single-writer lock.  valuemail.warehouse.connect also waits for the lock.
WRITER_POOL = "duckdb_writer"


class ValuemailResource(dg.ConfigurableResource):
    """Where valuemail keeps its data and which configuration it runs with."""

    home: str | None = None
    config_file: str | None = None

    def load(self) -> Config:
        return load_config(self.config_file, self.home)

    @contextmanager
    def warehouse(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_warehouse(self.load().warehouse_path, read_only=read_only) as con:
            yield con
