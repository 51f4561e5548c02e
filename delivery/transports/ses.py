"""The Amazon SES transport: ``sesv2.send_email`` with Raw content.

Configuration (``[delivery.ses]``): ``region``, ``endpoint_url`` (tests: moto),
``configuration_set`` (event publishing: Send, Delivery, Bounce, Complaint, Open, Click,
Subscription → SNS / Firehose → :mod:`delivery.engagement`), ``max_send_rate`` (0 = ask
SES), ``workers``, ``max_throttle_retries``, ``backoff_base_s``, ``backoff_max_s``,
``connect_timeout_s``, ``read_timeout_s``.

* **SDK retries are off** for sends: ``retries={"total_max_attempts": 1, "mode": "standard"}``.
  botocore retries a timed-out or 5xx request, which can send the same message twice.  Note
  that botocore reads ``{"max_attempts": 1}`` as *one retry* (it becomes
  ``total_max_attempts = 2``: two requests for one send — ``tests/test_ses.py`` counts them
  at a real HTTP endpoint), so the total is what we set.
* **Pacing**: one shared :class:`Pacer` spaces calls at the account's maximum send rate
  (``get_account`` → ``SendQuota.MaxSendRate``; SES v1 ``get_send_quota`` as a fallback).
* **Throttling** (``TooManyRequestsException``, ``Throttling``, HTTP 503 …) is a refusal:
  the message was not sent, so it is retried here with exponential backoff and full jitter,
  up to ``max_throttle_retries`` times, then handed back as a transient failure.
* Each message carries EmailTags ``vm_ref`` (the ledger row's reference), ``campaign`` and
  ``period``; SES overrides our ``Message-ID`` header with its own, so events are joined to
  the ledger through the tag (or the returned ``MessageId``, kept as ``transport_id``).
* Errors: ``MessageRejected`` / ``BadRequestException`` → permanent for that message (but a
  rejection naming our own, unverified sender identity stops the run);
  account-level errors (paused, suspended, unverified sender, bad credentials, daily quota)
  → the run stops with the messages left ``pending``; ``InternalFailure``, a read timeout or
  a dropped connection after the request went out → ``unknown`` (SES may have accepted it:
  reconcile finds it by its ``vm_ref`` tag in the Send / Delivery events).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from delivery.transports.base import (
    Envelope,
    LookupItem,
    OutcomeUnknown,
    PermanentFailure,
    TransientFailure,
    TransportUnavailable,
)

THROTTLE_CODES = frozenset({
    "TooManyRequestsException", "Throttling", "ThrottlingException", "ThrottledException",
    "RequestThrottled", "SlowDown", "ServiceUnavailable", "ServiceUnavailableException",
})
ACCOUNT_CODES = frozenset({
    "AccountSuspendedException", "SendingPausedException", "MailFromDomainNotVerifiedException",
    "AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId",
    "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException", "NotFoundException",
    "ConfigurationSetDoesNotExist", "LimitExceededException",
})
PERMANENT_CODES = frozenset({"MessageRejected", "BadRequestException", "InvalidParameterValue", "ValidationError"})
UNKNOWN_CODES = frozenset({"InternalFailure", "InternalServiceError", "InternalServerError", "InternalError"})


class Pacer:
    """Spaces calls ``1 / rate`` seconds apart, shared by every worker thread."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate <= 0:
            raise ValueError("send rate must be > 0")
        self.interval = 1.0 / rate
        self.clock, self.sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return 1.0 / self.interval

    def acquire(self) -> float:
        """Wait for this call's slot; returns the time waited."""
        with self._lock:
            now = self.clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            self.sleep(wait)
        return max(wait, 0.0)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**attempt))."""
    return (rng or random).uniform(0, min(cap, base * (2 ** attempt)))


@dataclass(frozen=True)
class SESSettings:
    region: str = ""
    endpoint_url: str = ""
    configuration_set: str = ""
    max_send_rate: float = 0.0
    workers: int = 4
    max_throttle_retries: int = 8
    backoff_base_s: float = 0.2
    backoff_max_s: float = 20.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> "SESSettings":
        return cls(
            region=str(section.get("region", "")),
            endpoint_url=str(section.get("endpoint_url", "")),
            configuration_set=str(section.get("configuration_set", "")),
            max_send_rate=float(section.get("max_send_rate", 0)),
            workers=max(1, int(section.get("workers", 4))),
            max_throttle_retries=int(section.get("max_throttle_retries", 8)),
            backoff_base_s=float(section.get("backoff_base_s", 0.2)),
            backoff_max_s=float(section.get("backoff_max_s", 20)),
            connect_timeout_s=float(section.get("connect_timeout_s", 5)),
            read_timeout_s=float(section.get("read_timeout_s", 30)),
        )


def make_client(settings: SESSettings, service: str = "sesv2"):
    import boto3
    from botocore.config import Config as BotoConfig

    config = BotoConfig(
        retries={"total_max_attempts": 1, "mode": "standard"},  # one request per send: SDK retries can send twice
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        max_pool_connections=max(10, settings.workers * 2),
    )
    kwargs: dict[str, Any] = {"config": config}
    if settings.region:
        kwargs["region_name"] = settings.region
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
    return boto3.client(service, **kwargs)


def account_send_rate(client, v1_client_factory: Callable[[], Any] | None = None) -> float:
    """The account's ``MaxSendRate`` (SES v2 ``get_account``, else v1 ``get_send_quota``, else 1/s)."""
    try:
        return float(client.get_account()["SendQuota"]["MaxSendRate"])
    except Exception:
        pass
    if v1_client_factory is not None:
        try:
            return float(v1_client_factory().get_send_quota()["MaxSendRate"])
        except Exception:
            pass
    return 1.0  # the SES sandbox rate: the safe assumption


class SESTransport:
    name = "ses"
    lookup_is_authoritative = False  # evidence arrives later, as events (see reconcile's events_lookup)

    def __init__(self, settings: SESSettings, client=None, pacer: Pacer | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None):
        self.settings = settings
        self.client = client if client is not None else make_client(settings)
        self.workers = settings.workers
        self.sleep = sleep
        self.rng = rng or random.Random()
        if pacer is None:
            rate = settings.max_send_rate or account_send_rate(
                self.client, (lambda: make_client(settings, "ses")) if client is None else None)
            pacer = Pacer(rate, sleep=sleep)
        self.pacer = pacer
        self.throttled = 0

    def session(self) -> "SESTransport":
        return self

    def describe(self) -> str:
        cs = self.settings.configuration_set or "no configuration set (no engagement events!)"
        return f"Amazon SES v2 (raw), {self.pacer.rate:g} messages/s, {cs}"

    def _params(self, envelope: Envelope, data: bytes) -> dict[str, Any]:
        params: dict[str, Any] = {
            "FromEmailAddress": envelope.sender,
            "Destination": {"ToAddresses": [envelope.recipient]},
            "Content": {"Raw": {"Data": data}},
            "EmailTags": [
                {"Name": "vm_ref", "Value": envelope.ref},
                {"Name": "campaign", "Value": envelope.campaign},
                {"Name": "period", "Value": envelope.period},
            ],
        }
        if self.settings.configuration_set:
            params["ConfigurationSetName"] = self.settings.configuration_set
        return params

    def send(self, envelope: Envelope, data: bytes) -> str:
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        params = self._params(envelope, data)
        for attempt in range(self.settings.max_throttle_retries + 1):
            self.pacer.acquire()
            try:
                return str(self.client.send_email(**params)["MessageId"])
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code", ""))
                message = str(error.get("Message", ""))
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
                if "daily message quota" in message.lower():
                    raise TransportUnavailable(f"SES daily sending quota reached: {message}") from exc
                if code in THROTTLE_CODES or status in (429, 503) or "rate exceeded" in message.lower():
                    self.throttled += 1
                    if attempt < self.settings.max_throttle_retries:
                        self.sleep(backoff_delay(attempt, self.settings.backoff_base_s, self.settings.backoff_max_s, self.rng))
                        continue
                    raise TransientFailure(f"SES kept throttling ({code}: {message})", retry_after_s=60) from exc
                lowered = message.lower()
                if code == "MessageRejected" and ("not verified" in lowered or "authority to send from" in lowered) and (
                        envelope.sender.lower() in message.lower()
                        or envelope.sender.rpartition("@")[2].lower() in message.lower()):
                    # Our own From identity is not verified: every message would fail the same way.
                    raise TransportUnavailable(f"SES: the sender identity is not verified: {message}") from exc
                if code in ACCOUNT_CODES:
                    raise TransportUnavailable(f"SES refuses to send for this account: {code}: {message}") from exc
                if code in PERMANENT_CODES or 400 <= status < 500:
                    raise PermanentFailure(f"SES rejected the message: {code}: {message}") from exc
                if code in UNKNOWN_CODES or status >= 500:
                    raise OutcomeUnknown(f"SES answered {status} {code}: {message}; it may have sent the message") from exc
                raise OutcomeUnknown(f"unexpected SES error {code}: {message}") from exc
            except (EndpointConnectionError, ConnectTimeoutError) as exc:
                # The request never reached SES: not sent.
                if attempt < self.settings.max_throttle_retries:
                    self.sleep(backoff_delay(attempt, self.settings.backoff_base_s, self.settings.backoff_max_s, self.rng))
                    continue
                raise TransportUnavailable(f"cannot reach SES: {exc}") from exc
            except (ReadTimeoutError, ConnectionClosedError) as exc:
                raise OutcomeUnknown(f"no answer from SES after sending the request: {exc}") from exc
        raise AssertionError("unreachable")

    def lookup(self, items: Iterable[LookupItem]) -> dict[str, str | None]:
        return {}  # SES has no "did you accept X" API; the Send / Delivery events answer it

    def close(self) -> None:
        pass
