"""The preference store as delivery sees it: open it from the config, map its answers to reason codes.

The preference centre owns the store (``preference_centre/store.py``); delivery only reads
it (whole population at decision time, a chunk of customers right before their send) and
writes suppressions from engagement events (hard bounce, complaint, SES subscription).
"""

from __future__ import annotations

import os
from typing import Iterable, Mapping

import duckdb

from valuemail.config import Config

#: The store's block reasons → eligibility reason codes.
STORE_REASON: Mapping[str, str] = {
    "complained": "complained",
    "bounced": "bounced",
    "suppressed": "suppressed",
    "unsubscribed": "unsubscribed",
    "frequency_never": "frequency_not_due",
    "frequency_not_due": "frequency_not_due",
}
#: The store's suppression reasons → eligibility reason codes.
SUPPRESSION_REASON: Mapping[str, str] = {
    "complaint": "complained",
    "hard_bounce": "bounced",
    "manual": "suppressed",
    "unsubscribed": "unsubscribed",
}
CAMPAIGNS_FOR: Mapping[str, frozenset[str]] = {
    "weekly": frozenset({"weekly", "monthly", "yearly"}),
    "monthly": frozenset({"monthly", "yearly"}),
    "yearly": frozenset({"yearly"}),
    "never": frozenset(),
}
DEFAULT_FREQUENCY = "weekly"


def store_url(config: Config) -> str:
    """``$VALUEMAIL_PREFERENCES_URL``, ``preference_centre.database_url`` or ``sqlite:///<home>/preferences.sqlite``."""
    section = config.section("preference_centre")
    url = os.environ.get("VALUEMAIL_PREFERENCES_URL") or section.get("database_url")
    if url:
        return str(url)
    from preference_centre.store import default_url

    return default_url(config.home)


def open_store(config: Config):
    """A :class:`preference_centre.store.PreferenceStore` for ``config`` (close it when done)."""
    from preference_centre.store import PreferenceStore

    return PreferenceStore(store_url(config))


def load_states(con: duckdb.DuckDBPyConnection, store, table: str = "_pc_state") -> int:
    """Copy every non-default customer state into a temp DuckDB table ``(customer_id, frequency, suppression)``.

    Anyone absent from the table has the default state (weekly, not suppressed); this is the
    cheapest way to join a million customers against the store.
    """
    import pyarrow as pa

    overrides = store.overrides()
    states = pa.table({
        "customer_id": pa.array(list(overrides), pa.string()),
        "frequency": pa.array([st.frequency for st in overrides.values()], pa.string()),
        "suppression": pa.array([st.suppression for st in overrides.values()], pa.string()),
    })
    con.register("_pc_state_arrow", states)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM _pc_state_arrow")
    finally:
        con.unregister("_pc_state_arrow")
    return states.num_rows


def blocked(store, customer_ids: Iterable[str], campaign: str) -> dict[str, str]:
    """Send-time re-check: ``{customer_id: eligibility reason}`` for those who must not get ``campaign`` now."""
    return {cid: STORE_REASON.get(reason, reason) for cid, reason in store.blocked(list(customer_ids), campaign).items()}
