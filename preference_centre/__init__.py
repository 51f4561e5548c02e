"""The preference centre: customers choose how often they hear from us; one click unsubscribes them.

What the rest of valuemail uses (no Dagster here):

* :class:`preference_centre.store.PreferenceStore` — read at eligibility time *and* again right
  before each send (``bulk_state``, ``blocked``, ``is_sendable``); the pipeline registers
  customers with ``upsert_customers`` and records bounces/complaints with ``suppress``;
* :mod:`preference_centre.links` — the signed URLs for every email and the RFC 8058 headers;
* :func:`preference_centre.server.serve` — ``valuemail serve``.

See ``preference_centre/README.md``.
"""
