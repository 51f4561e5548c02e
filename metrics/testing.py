"""Tiny builders for hand-computed metrics fixtures (used by tests; handy in a notebook too).

Everything is UTC: ingest converts ``occurred_at`` with an offset to UTC before it stores
it, so fixtures here are written in UTC (``to_utc`` shows the conversion a test relies on).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import duckdb

from valuemail.config import Config, load_config
from valuemail.warehouse import ensure_schema

_ids = itertools.count(1)


def warehouse(path: str = ":memory:") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(path)
    ensure_schema(con)
    return con


def config(tmp_home: Any = None, **sections: dict) -> Config:
    """The default configuration with ``sections`` merged over it (e.g. ``segments={...}``)."""
    return load_config(home=tmp_home or "/tmp/valuemail-test-home", overrides=sections or None)


def to_utc(value: datetime | str) -> datetime:
    """An aware timestamp (or ISO text with an offset) as the naive UTC value ingest stores."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def add_customer(
    con: duckdb.DuckDBPyConnection,
    customer_id: str,
    signed_up_at: datetime | str = "2020-01-01 00:00:00",
    plan: str = "pro",
    currency: str | None = None,
    hourly_rate: Decimal | float | str | None = None,
    email: str | None = None,
    country: str | None = "US",
) -> None:
    con.execute(
        "INSERT INTO customers VALUES (?, ?, ?, 'en', 'UTC', ?, ?, ?, NULL, ?, ?, 'fixture', TIMESTAMP '2020-01-01')",
        [customer_id, email or f"{customer_id}@example.com", customer_id.title(), plan, country,
         to_utc(signed_up_at), None if hourly_rate is None else Decimal(str(hourly_rate)), currency],
    )


def add_event(
    con: duckdb.DuckDBPyConnection,
    customer_id: str,
    occurred_at: datetime | str,
    event_type: str = "workflow_run",
    quantity: int = 1,
    duration_saved_s: float | None = None,
    amount_saved: Decimal | float | str | None = None,
    currency: str | None = None,
    known: bool = True,
) -> str:
    event_id = f"evt_{next(_ids)}"
    con.execute(
        "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, 'fixture', TIMESTAMP '2020-01-01')",
        [event_id, customer_id, to_utc(occurred_at), event_type, quantity, duration_saved_s,
         None if amount_saved is None else Decimal(str(amount_saved)), currency, known],
    )
    return event_id


def add_email_event(
    con: duckdb.DuckDBPyConnection,
    event_type: str,
    occurred_at: datetime | str,
    customer_id: str | None = None,
    email: str | None = None,
    message_id: str | None = None,
    campaign: str | None = "weekly",
    period: str | None = None,
) -> None:
    con.execute(
        "INSERT INTO email_events VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, 'fixture')",
        [f"ee_{next(_ids)}", message_id, customer_id, email, campaign, period, event_type, to_utc(occurred_at)],
    )


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def metrics_row(con: duckdb.DuckDBPyConnection, campaign: str, period: str, customer_id: str) -> dict | None:
    found = rows(con, "SELECT * FROM customer_metrics WHERE campaign = ? AND period = ? AND customer_id = ?",
                 [campaign, period, customer_id])
    return found[0] if found else None
