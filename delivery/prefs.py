"""The preference store as delivery sees it: open it from the config, map its answers to reason codes.

The preference centre owns the store (``preference_centre/store.py``); delivery only reads
it (whole population at decision time, a chunk of customers right before their send) and
writes suppressions from engagement events (hard bounce, complaint, SES subscription).
"""

from __future__ import annotations

import os
from datetime import datetime
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
_SEVERITY = list(SUPPRESSION_REASON)  # most severe first
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


def mailbox_siblings(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, ...]]:
    """``{customer_id: the other customers with the same (normalised) address}``, for shared mailboxes only."""
    from delivery.addresses import normalised_sql

    try:
        rows = con.execute(f"""
            WITH a AS (SELECT customer_id, {normalised_sql("email")} AS addr FROM customers
                       WHERE {normalised_sql("email")} <> ''),
                 shared AS (SELECT addr FROM a GROUP BY addr HAVING count(*) > 1)
            SELECT a.customer_id, list(o.customer_id ORDER BY o.customer_id)
            FROM a JOIN shared USING (addr) JOIN a o ON o.addr = a.addr AND o.customer_id <> a.customer_id
            GROUP BY a.customer_id
        """).fetchall()
    except duckdb.CatalogException:  # no customers table
        return {}
    return {cid: tuple(others) for cid, others in rows}


def blocked(store, customer_ids: Iterable[str], campaign: str,
            siblings: Mapping[str, Iterable[str]] | None = None) -> dict[str, str]:
    """Send-time re-check: ``{customer_id: eligibility reason}`` for those who must not get ``campaign`` now.

    A suppression of any of a customer's ``siblings`` (:func:`mailbox_siblings`: the same
    mailbox) blocks the customer too — the most severe one wins; the frequency stays the
    customer's own.
    """
    from preference_centre.store import CustomerState

    ids = list(customer_ids)
    siblings = siblings or {}
    states = store.bulk_state([*ids, *(other for cid in ids for other in siblings.get(cid, ()))])
    out = {}
    for cid in ids:
        mailbox = [states[cid], *(states[other] for other in siblings.get(cid, ()))]
        suppression = min((st.suppression for st in mailbox if st.suppression), key=_SEVERITY.index, default=None)
        ok, reason = CustomerState(states[cid].frequency, suppression).allows(campaign)
        if not ok:
            out[cid] = STORE_REASON.get(reason, reason)
    return out


def suppressed_before(store, decided: Mapping[str, datetime], campaign: str,
                      siblings: Mapping[str, Iterable[str]] | None = None) -> tuple[list[tuple[str, str]], int]:
    """An independent re-check of ``send`` decisions (``{customer_id: decided_at}``, naive UTC).

    Returns the ``(customer_id, reason)`` blocked by a suppression older than their decision —
    of the customer or of anyone with the same mailbox: a faulty decision — and how many are
    blocked only by a change made since (the send step cancels those).
    """
    violations, changed_since = [], 0
    for cid, reason in blocked(store, list(decided), campaign, siblings).items():
        profiles = [store.profile(c) for c in (cid, *(siblings or {}).get(cid, ()))]
        if any(p and p.suppressed_since and p.suppressed_since.replace(tzinfo=None) < decided[cid] for p in profiles):
            violations.append((cid, reason))
        else:
            changed_since += 1
    return violations, changed_since
