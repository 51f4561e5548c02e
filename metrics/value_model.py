"""The value model as a warehouse table, so every figure can be traced in SQL.

``value_model`` holds one row per (version, event_type); metrics rows carry the version
they were computed with, and an analyst can join back to see how each minute was counted.
"""

from __future__ import annotations

import duckdb

from valuemail.config import ValueModel

DDL = """
CREATE TABLE IF NOT EXISTS value_model (
    version          VARCHAR NOT NULL,
    event_type       VARCHAR NOT NULL,
    feature          VARCHAR NOT NULL,
    task             BOOLEAN NOT NULL,
    minutes_per_unit DECIMAL(18, 4) NOT NULL,
    money_per_unit   DECIMAL(18, 4) NOT NULL,
    currency         VARCHAR NOT NULL,
    explain          VARCHAR NOT NULL,
    PRIMARY KEY (version, event_type)
)
"""


def sync_value_model(con: duckdb.DuckDBPyConnection, model: ValueModel) -> int:
    """Write ``model`` as version ``model.version`` (replacing that version's rows)."""
    con.execute(DDL)
    con.execute("DELETE FROM value_model WHERE version = ?", [model.version])
    rows = [
        (model.version, ev.event_type, ev.feature, ev.task, ev.minutes_per_unit, ev.money_per_unit, model.currency, ev.explain)
        for ev in model.events.values()
    ]
    con.executemany("INSERT INTO value_model VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)
