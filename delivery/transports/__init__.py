"""Transports: ``file`` (default, a dry-run outbox), ``smtp`` and ``ses`` — chosen by ``delivery.transport``."""

from __future__ import annotations

from delivery.transports.base import (
    DeliveryError,
    Envelope,
    LookupItem,
    OutcomeUnknown,
    PermanentFailure,
    TransientFailure,
    Transport,
    TransportUnavailable,
)
from valuemail.config import Config, ConfigError

NAMES = ("file", "smtp", "ses")


def make_transport(config: Config, name: str | None = None) -> Transport:
    """The transport named by ``delivery.transport`` (or ``name``), configured from its section."""
    delivery = config.section("delivery")
    name = (name or str(delivery.get("transport", "file"))).lower()
    if name == "file":
        from delivery.transports.file import FileTransport

        return FileTransport(config.outbox_dir, fsync=bool(delivery.get("journal_fsync", False)))
    if name == "smtp":
        from delivery.transports.smtp import SMTPSettings, SMTPTransport

        try:
            return SMTPTransport(SMTPSettings.from_config(delivery.get("smtp", {})))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if name == "ses":
        from delivery.transports.ses import SESSettings, SESTransport

        return SESTransport(SESSettings.from_config(delivery.get("ses", {})))
    raise ConfigError(f"delivery.transport: expected one of {', '.join(NAMES)}, got {name!r}")


__all__ = [
    "DeliveryError", "Envelope", "LookupItem", "OutcomeUnknown", "PermanentFailure", "TransientFailure",
    "Transport", "TransportUnavailable", "make_transport", "NAMES",
]
