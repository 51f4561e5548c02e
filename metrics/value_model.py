"""The value model as a warehouse table, so every figure can be traced in SQL.

``value_model`` holds one row per (version, event_type); metrics rows carry the version
they were computed with, and an analyst can join back to see how each minute was counted.

Exact arithmetic: saved time is carried in integer units of 1/10,000 s ("s4"), money in
integer units of 1/10,000 of the currency ("m4"); both are summed exactly and rounded once,
at the end, half up to 0.01 (see README).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

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

# 1 minute = 60 s = 600,000 units of 1/10,000 s.
S4_PER_MINUTE = 600_000
# Temp table with the value model of the current run; ``idx`` numbers the known event types.
VM_TEMP = "_m_vm"


def sync_value_model(con: duckdb.DuckDBPyConnection, model: ValueModel) -> int:
    """Write ``model`` as version ``model.version`` (replacing that version's rows)."""
    con.execute(DDL)
    con.execute("DELETE FROM value_model WHERE version = ?", [model.version])
    rows = [
        (model.version, ev.event_type, ev.feature, ev.task, ev.minutes_per_unit, ev.money_per_unit, model.currency, ev.explain)
        for ev in model.events.values()
    ]
    if rows:
        con.executemany("INSERT INTO value_model VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def s4_per_unit(minutes_per_unit: Decimal) -> int:
    """Minutes per unit as integer 1/10,000 s (half up beyond that resolution)."""
    return int((Decimal(minutes_per_unit) * S4_PER_MINUTE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def m4_per_unit(money_per_unit: Decimal) -> int:
    """Money per unit as integer 1/10,000 of the currency unit (half up beyond that resolution)."""
    return int((Decimal(money_per_unit) * 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def register_value_model(con: duckdb.DuckDBPyConnection, model: ValueModel) -> int:
    """(Re)create the temp table ``_m_vm`` the metrics queries join: one row per known type."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {VM_TEMP} (idx INTEGER, event_type VARCHAR, feature VARCHAR, task BOOLEAN, "
        "s4_per_unit BIGINT, m4_per_unit BIGINT, explain VARCHAR)"
    )
    rows = [
        (i, ev.event_type, ev.feature, ev.task, s4_per_unit(ev.minutes_per_unit), m4_per_unit(ev.money_per_unit), ev.explain)
        for i, ev in enumerate(sorted(model.events.values(), key=lambda e: e.event_type))
    ]
    if rows:
        con.executemany(f"INSERT INTO {VM_TEMP} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def explain_rows(model: ValueModel) -> list[dict]:
    """The customer-facing "how we counted" lines, one per event type (for templates)."""
    return [
        {"event_type": ev.event_type, "feature": ev.feature, "task": ev.task,
         "minutes_per_unit": str(ev.minutes_per_unit), "money_per_unit": str(ev.money_per_unit),
         "currency": model.currency, "explain": ev.explain}
        for ev in sorted(model.events.values(), key=lambda e: e.event_type)
    ]
