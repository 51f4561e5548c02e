"""What every transport promises, and the four ways a send can go wrong.

A transport hands one finished RFC 5322 message to something that delivers it.  The send
loop owns exactly-once; a transport only has to say, truthfully, which of these happened:

====================  ============================================================  ==================
returns / raises      meaning                                                       ledger
====================  ============================================================  ==================
returns an id         accepted (file written, SMTP 250 after DATA, SES MessageId)   ``sent``
PermanentFailure      refused for good for this recipient / message (5xx, rejected) ``failed``
TransientFailure      refused for now, certainly *not* accepted (4xx, throttled)     ``pending`` (retry)
OutcomeUnknown        may or may not have been accepted (connection lost after the  ``unknown``
                      message was handed over, SES 500, read timeout)
TransportUnavailable  certainly not accepted, and no point trying others now        ``pending``; the
                      (connection refused, bad credentials, account paused)          run stops
====================  ============================================================  ==================

``lookup`` is the reconcile side: given our Message-IDs, which ones does the transport's
own record show as accepted?  ``lookup_is_authoritative`` says whether "not found" proves
"never accepted" (true for the file outbox and for an SMTP server log written before the
server replies 250; false for SES, whose evidence arrives later as events).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol


class DeliveryError(Exception):
    kind = "unknown"

    def __init__(self, message: str, retry_after_s: float = 0.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentFailure(DeliveryError):
    kind = "permanent"


class TransientFailure(DeliveryError):
    kind = "transient"


class OutcomeUnknown(DeliveryError):
    kind = "unknown"


class TransportUnavailable(DeliveryError):
    kind = "unavailable"


@dataclass(frozen=True)
class Envelope:
    """Who and what one transport call is about."""

    sender: str          # envelope sender (MAIL FROM / Return-Path): where bounces go
    recipient: str
    message_id: str      # our Message-ID header value, with angle brackets
    ref: str             # the ledger row's stable reference (SES tag vm_ref)
    campaign: str
    period: str
    customer_id: str


@dataclass(frozen=True)
class LookupItem:
    message_id: str
    campaign: str
    period: str
    customer_id: str


class Session(Protocol):
    """One worker's connection; used by one thread at a time."""

    def send(self, envelope: Envelope, data: bytes) -> str: ...

    def close(self) -> None: ...


class Transport(Protocol):
    name: str
    workers: int
    lookup_is_authoritative: bool

    def session(self) -> Session: ...

    def lookup(self, items: Iterable[LookupItem]) -> Mapping[str, str | None]: ...

    def close(self) -> None: ...

    def describe(self) -> str: ...
