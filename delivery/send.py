"""The send loop: ledger first, transport second, in batches.

For each batch the rows are marked ``sending`` and committed *before* any transport call,
then marked ``sent`` (or ``failed``) and committed after.  A crash between the two leaves
rows in ``sending``; the next run reconciles them with the transport's own record
(``was_delivered``) and never re-sends a message the transport may already have.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Callable, Iterable, Protocol

import duckdb

from delivery.outbox import ensure_outbox
from valuemail.periods import Period


class Transport(Protocol):
    name: str

    def send(self, msg: EmailMessage, campaign: str, period: str, customer_id: str) -> str: ...

    def was_delivered(self, campaign: str, period: str, customer_id: str) -> bool | None: ...


@dataclass
class DeliverySummary:
    by_status: Counter = field(default_factory=Counter)
    reconciled: int = 0

    def describe(self) -> str:
        parts = ", ".join(f"{n} {status}" for status, n in sorted(self.by_status.items()))
        return parts or "nothing to send"


def enqueue(con: duckdb.DuckDBPyConnection, period: Period) -> int:
    """Add a ``pending`` ledger row for every ``send`` decision that has none yet."""
    ensure_outbox(con)
    before = con.execute("SELECT count(*) FROM outbox WHERE campaign = ? AND period = ?", [period.campaign, period.start]).fetchone()[0]
    con.execute(
        """
        INSERT INTO outbox (campaign, period, customer_id, email, status, attempts, created_at, updated_at)
        SELECT e.campaign, e.period, e.customer_id, c.email, 'pending', 0, now(), now()
        FROM eligibility e JOIN customers c USING (customer_id)
        WHERE e.campaign = ? AND e.period = ? AND e.reason = 'send'
          AND NOT EXISTS (SELECT 1 FROM outbox o
                          WHERE o.campaign = e.campaign AND o.period = e.period AND o.customer_id = e.customer_id)
        """,
        [period.campaign, period.start],
    )
    after = con.execute("SELECT count(*) FROM outbox WHERE campaign = ? AND period = ?", [period.campaign, period.start]).fetchone()[0]
    return after - before


def reconcile(con: duckdb.DuckDBPyConnection, period: Period, transport: Transport) -> int:
    """Rows left in ``sending`` by a crash become ``sent`` or ``unknown`` — never ``pending``."""
    rows = con.execute(
        "SELECT customer_id FROM outbox WHERE campaign = ? AND period = ? AND status = 'sending'",
        [period.campaign, period.start],
    ).fetchall()
    for (customer_id,) in rows:
        delivered = transport.was_delivered(period.campaign, period.key, customer_id)
        status = "sent" if delivered else ("unknown" if delivered is None else "pending")
        con.execute(
            "UPDATE outbox SET status = ?, updated_at = now(), last_error = 'reconciled after interrupted send' "
            "WHERE campaign = ? AND period = ? AND customer_id = ?",
            [status, period.campaign, period.start, customer_id],
        )
    return len(rows)


def deliver(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    transport: Transport,
    build: Callable[[str], EmailMessage],
    batch_size: int = 200,
    progress: Callable[[str], None] | None = None,
) -> DeliverySummary:
    """Send every ``pending`` message of ``period`` exactly once."""
    summary = DeliverySummary()
    summary.reconciled = reconcile(con, period, transport)
    enqueue(con, period)
    while True:
        batch = [
            r[0]
            for r in con.execute(
                "SELECT customer_id FROM outbox WHERE campaign = ? AND period = ? AND status = 'pending' "
                "ORDER BY customer_id LIMIT ?",
                [period.campaign, period.start, batch_size],
            ).fetchall()
        ]
        if not batch:
            break
        _mark(con, period, batch, "sending", attempts_inc=1)
        results: list[tuple[str, str, str | None, str | None, str | None]] = []
        for customer_id in batch:
            try:
                msg = build(customer_id)
                transport_id = transport.send(msg, period.campaign, period.key, customer_id)
                results.append((customer_id, "sent", msg["Message-ID"], transport_id, None))
            except Exception as exc:  # one bad message never stops the batch
                results.append((customer_id, "failed", None, None, f"{type(exc).__name__}: {exc}"))
        con.executemany(
            "UPDATE outbox SET status = ?, message_id = ?, transport_id = ?, last_error = ?, transport = ?, updated_at = now() "
            "WHERE campaign = ? AND period = ? AND customer_id = ?",
            [(s, mid, tid, err, transport.name, period.campaign, period.start, cid) for cid, s, mid, tid, err in results],
        )
        summary.by_status.update(s for _, s, *_ in results)
        if progress:
            progress(f"delivered {sum(summary.by_status.values())} messages ({summary.describe()})")
    return summary


def _mark(con: duckdb.DuckDBPyConnection, period: Period, customer_ids: Iterable[str], status: str, attempts_inc: int = 0) -> None:
    con.executemany(
        "UPDATE outbox SET status = ?, attempts = attempts + ?, updated_at = now() WHERE campaign = ? AND period = ? AND customer_id = ?",
        [(status, attempts_inc, period.campaign, period.start, cid) for cid in customer_ids],
    )
