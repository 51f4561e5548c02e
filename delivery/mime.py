"""Build RFC 5322 messages: text + HTML alternatives with inline ``cid:`` PNG charts.

Structure::

    multipart/alternative
    ├── text/plain
    └── multipart/related
        ├── text/html
        └── image/png (Content-ID: <chart...>)   × n

Header values are checked: a CR, LF or other control character raises
:class:`HeaderInjectionError` naming the header, instead of being silently folded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid
from datetime import datetime, timezone

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class HeaderInjectionError(ValueError):
    """A header value contained CR, LF or another control character."""


def check_header(name: str, value: str) -> str:
    if _CONTROL.search(value):
        raise HeaderInjectionError(f"header {name!r} contains a control character (CR/LF/...): {value[:60]!r}")
    return value


@dataclass(frozen=True)
class InlineImage:
    cid: str          # without angle brackets; referenced in HTML as src="cid:<cid>"
    png: bytes
    filename: str = "chart.png"


@dataclass(frozen=True)
class OutgoingEmail:
    from_name: str
    from_address: str
    to_name: str
    to_address: str
    subject: str
    text: str
    html: str
    images: tuple[InlineImage, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    message_id: str | None = None


def build_message(mail: OutgoingEmail, now: datetime | None = None) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = formataddr((check_header("From", mail.from_name), check_header("From", mail.from_address)))
    msg["To"] = formataddr((check_header("To", mail.to_name), check_header("To", mail.to_address)))
    msg["Subject"] = check_header("Subject", mail.subject)
    msg["Date"] = format_datetime(now or datetime.now(timezone.utc))
    msg["Message-ID"] = check_header("Message-ID", mail.message_id or make_msgid(domain=mail.from_address.rpartition("@")[2]))
    msg["MIME-Version"] = "1.0"
    for name, value in mail.headers.items():
        msg[check_header("header name", name)] = check_header(name, value)
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    if mail.images:
        html_part = msg.get_payload()[1]
        for image in mail.images:
            html_part.add_related(image.png, maintype="image", subtype="png", cid=f"<{image.cid}>", filename=image.filename)
    return msg
