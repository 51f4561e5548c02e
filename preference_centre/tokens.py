"""Signed, purpose-specific tokens for preference and unsubscribe links (and form CSRF tokens).

A token is ``itsdangerous.URLSafeTimedSerializer`` output: a compact JSON payload, a
timestamp and an HMAC-SHA256 signature over both, checked in constant time
(``hmac.compare_digest`` inside itsdangerous).  Each purpose has its
own salt, so a token made for one purpose never verifies for another.

The payload holds the customer's **opaque id** only (the pipeline's ``customer_id``) — never
an email address: ids that contain ``@`` are refused, so a customer table keyed by email
fails loudly instead of leaking addresses into URLs, proxies' logs and browser histories.
The payload is signed, not encrypted: anyone holding a link can read the id in it.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final, Literal

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from preference_centre.settings import Settings
from valuemail.ids import id_problem

Purpose = Literal["preferences", "unsubscribe", "form"]
PURPOSES: Final[tuple[Purpose, ...]] = ("preferences", "unsubscribe", "form")
_SALT_PREFIX: Final = "valuemail.preference_centre."
MAX_TOKEN_LENGTH: Final = 4096  # anything longer is not ours: refuse before decoding
_CAMPAIGN_RE: Final = re.compile(r"^[a-z0-9_-]{1,40}$")


class TokenError(Exception):
    """A token that must not be honoured.  ``kind``: ``invalid`` (forged, tampered, wrong purpose,
    malformed) or ``expired`` (genuine but older than the purpose's maximum age)."""

    def __init__(self, kind: Literal["invalid", "expired"], message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class TokenData:
    """What a verified token says."""

    purpose: Purpose
    customer_id: str
    extra: str | None  # the campaign of an unsubscribe token; the nonce of a form token
    issued_at: datetime


def check_customer_id(customer_id: str) -> str:
    """Refuse ids that can't go into a link: not valid by ``valuemail.ids`` (empty, too long, an ``@``)."""
    problem = id_problem(customer_id) if isinstance(customer_id, str) else "is not a string"
    if problem:
        raise ValueError(f"customer_id {problem}")
    return customer_id


class TokenService:
    """Makes and checks tokens.  ``secrets`` oldest first; the last one signs (key rotation).

    ``clock`` returns the Unix time; it is used both when signing and when checking the age,
    so tests make "old" tokens with a clock in the past instead of sleeping.
    """

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        max_age: dict[Purpose, timedelta],
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secrets:
            raise ValueError("TokenService needs at least one secret")
        missing = set(PURPOSES) - set(max_age)
        if missing:
            raise ValueError(f"max_age missing for {sorted(missing)}")
        self._max_age = {p: int(age.total_seconds()) for p, age in max_age.items()}

        class _ClockSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

        self._serializers = {
            purpose: URLSafeTimedSerializer(
                list(secrets),
                salt=_SALT_PREFIX + purpose,
                signer=_ClockSigner,
                signer_kwargs={"digest_method": hashlib.sha256},
            )
            for purpose in PURPOSES
        }

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Callable[[], float] = time.time) -> "TokenService":
        return cls(
            settings.secrets,
            max_age={
                "preferences": settings.preferences_max_age,
                "unsubscribe": settings.unsubscribe_max_age,
                "form": settings.form_max_age,
            },
            clock=clock,
        )

    # -- making --------------------------------------------------------------------------
    def preferences_token(self, customer_id: str) -> str:
        """Opens the customer's preferences page."""
        return self._serializers["preferences"].dumps([check_customer_id(customer_id)])

    def unsubscribe_token(self, customer_id: str, campaign: str) -> str:
        """One-click unsubscribe; ``campaign`` is recorded with the change (the unsubscribe covers all)."""
        if not isinstance(campaign, str) or not _CAMPAIGN_RE.match(campaign):
            raise ValueError(f"campaign must be a short lowercase name (a-z, 0-9, _ or -), got {campaign!r}")
        return self._serializers["unsubscribe"].dumps([check_customer_id(customer_id), campaign])

    def form_token(self, customer_id: str, nonce: str) -> str:
        """CSRF token of one preferences form, bound to the customer and the browser's nonce cookie."""
        return self._serializers["form"].dumps([check_customer_id(customer_id), nonce])

    # -- checking ------------------------------------------------------------------------
    def read(self, purpose: Purpose, token: str) -> TokenData:
        """Verify ``token`` for ``purpose``; raises :class:`TokenError` for anything not genuine and fresh."""
        if purpose not in self._serializers:
            raise ValueError(f"unknown purpose {purpose!r}")
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("invalid", "empty or oversized token")
        try:
            payload, issued = self._serializers[purpose].loads(
                token, max_age=self._max_age[purpose], return_timestamp=True
            )
        except SignatureExpired as exc:
            raise TokenError("expired", f"{purpose} token expired") from exc
        except BadData as exc:  # bad signature, wrong salt (purpose), bad base64/JSON
            raise TokenError("invalid", f"not a valid {purpose} token") from exc
        expected_len = 1 if purpose == "preferences" else 2
        if (
            not isinstance(payload, list)
            or len(payload) != expected_len
            or not all(isinstance(item, str) for item in payload)
        ):
            raise TokenError("invalid", f"malformed {purpose} token payload")
        try:
            customer_id = check_customer_id(payload[0])
        except ValueError as exc:
            raise TokenError("invalid", str(exc)) from exc
        return TokenData(
            purpose=purpose,
            customer_id=customer_id,
            extra=payload[1] if expected_len == 2 else None,
            issued_at=issued.astimezone(timezone.utc),
        )
