"""Turn what the emails stage rendered into the exact bytes a transport sends.

Reads, per batch, one row per customer from ``emails`` (subject, ``html_path``,
``text_path``; the email engineer's public contract) joined with ``customers`` (display
name) and — when that table exists — the inline images from ``email_images``
(``campaign, period, customer_id, cid, path``).  Files are read and the MIME built in the
worker threads (:meth:`MessageSource.build`); the database is only touched from the
thread that owns the connection (:meth:`MessageSource.load`).

Headers every message gets:

* ``Message-ID`` — the ledger row's, fixed at enqueue (the reconcile key);
* ``List-Unsubscribe: <https://…/u/<signed token>>`` and
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058), from
  :mod:`preference_centre.links`;
* ``List-Id: <name> <<campaign>.<sender.list_id>>`` (RFC 2919; one list per campaign);
* ``Date``, ``MIME-Version``, ``Reply-To`` (``sender.reply_to``), ``X-Valuemail-Ref``
  (the ledger reference, so bounces that quote our headers can be matched) and
  ``Feedback-ID`` (``<campaign>:<period>:valuemail``, Gmail's feedback loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping, Sequence

import duckdb

from delivery.mime import InlineImage, OutgoingEmail, build_raw
from delivery.outbox import message_ref
from valuemail.config import Config
from valuemail.periods import Period


class ContentError(Exception):
    """The rendered e-mail for a customer is missing or unreadable (a permanent, content failure)."""


@dataclass(frozen=True)
class Rendered:
    customer_id: str
    to_name: str
    subject: str
    html_path: str
    text_path: str
    images: tuple[tuple[str, str], ...] = ()   # (cid, png path)


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'", [name]
    ).fetchone()[0])


def default_list_unsubscribe(config: Config) -> Callable[[str, str], Mapping[str, str]]:
    from preference_centre.links import link_builder

    builder = link_builder(config)
    return builder.list_unsubscribe_headers


class MessageSource:
    """Loads rendered content for a batch and builds each message's bytes."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        config: Config,
        period: Period,
        list_unsubscribe: Callable[[str, str], Mapping[str, str]] | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
        self.con = con
        self.period = period
        sender = config.section("sender")
        delivery = config.section("delivery")
        self.from_name = str(sender.get("from_name", ""))
        self.from_address = str(sender["from_address"])
        self.reply_to = str(sender.get("reply_to", "") or "")
        self.envelope_from = str(delivery.get("envelope_from", "") or self.from_address)
        list_id = str(sender.get("list_id", "value-emails.valuemail.example"))
        self.list_id = f"{self.from_name} {period.campaign} <{period.campaign}.{list_id}>"
        self.list_unsubscribe = list_unsubscribe or default_list_unsubscribe(config)
        self.clock = clock
        self.has_images = _table_exists(con, "email_images")

    @property
    def sender_domain(self) -> str:
        return self.from_address.rpartition("@")[2]

    def load(self, customer_ids: Sequence[str]) -> dict[str, Rendered]:
        """The rendered e-mails of these customers (absent: not rendered)."""
        if not customer_ids or not _table_exists(self.con, "emails"):
            return {}
        p = [self.period.campaign, self.period.start, list(customer_ids)]
        rows = self.con.execute(
            """
            SELECT e.customer_id, coalesce(c.name, ''), e.subject, e.html_path, e.text_path
            FROM emails e LEFT JOIN customers c USING (customer_id)
            WHERE e.campaign = ? AND e.period = ? AND list_contains(?, e.customer_id)
            """,
            p,
        ).fetchall()
        images: dict[str, list[tuple[str, str]]] = {}
        if self.has_images:
            for cid, content_id, path in self.con.execute(
                "SELECT customer_id, cid, path FROM email_images WHERE campaign = ? AND period = ? "
                "AND list_contains(?, customer_id) ORDER BY customer_id, cid",
                p,
            ).fetchall():
                images.setdefault(cid, []).append((content_id, path))
        return {r[0]: Rendered(*r, images=tuple(images.get(r[0], ()))) for r in rows}

    def build(self, rendered: Rendered | None, customer_id: str, to_address: str, message_id: str) -> bytes:
        """The message bytes (raises :class:`ContentError` when there is nothing to send)."""
        if rendered is None:
            raise ContentError(f"no rendered e-mail: customer {customer_id} has no row in emails for {self.period}")
        try:
            text = Path(rendered.text_path).read_text(encoding="utf-8")
            html = Path(rendered.html_path).read_text(encoding="utf-8")
            images = tuple(InlineImage(cid, Path(path).read_bytes(), Path(path).name) for cid, path in rendered.images)
        except OSError as exc:
            raise ContentError(f"rendered e-mail unreadable: {exc}") from exc
        headers = {
            "List-Id": self.list_id,
            **self.list_unsubscribe(customer_id, self.period.campaign),
            "X-Valuemail-Ref": message_ref(self.period.campaign, self.period.key, customer_id),
            "Feedback-ID": f"{self.period.campaign}:{self.period.key}:valuemail",
        }
        mail = OutgoingEmail(
            from_name=self.from_name,
            from_address=self.from_address,
            to_name=rendered.to_name,
            to_address=to_address,
            subject=rendered.subject,
            text=text,
            html=html,
            images=images,
            headers=headers,
            message_id=message_id,
            reply_to=self.reply_to,
        )
        return build_raw(mail, now=self.clock() if self.clock else None)
