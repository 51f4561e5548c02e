"""Build RFC 5322 messages: text + HTML alternatives with inline ``cid:`` PNG charts.

Structure (text first, then HTML: clients show the last alternative they understand)::

    multipart/alternative
    ├── text/plain; charset=utf-8           (quoted-printable)
    └── multipart/related                   (only when there are inline images)
        ├── text/html; charset=utf-8        (quoted-printable)
        └── image/png  Content-ID: <chart…> (base64)  × n

Two builders produce the same structure:

* :func:`build_message` — the standard library's :class:`~email.message.EmailMessage`
  (``policy.SMTP``): the reference, ~300 messages/s;
* :func:`build_raw` — the same bytes layout assembled directly with C-level encoders
  (``binascii.b2a_qp``, ``base64``): ~10,000 messages/s, used by the send loop.
  ``tests/test_mime.py`` parses both and requires the same headers, parts and payloads.

Both serialise with CRLF line ends only, and check every header: a CR, LF or other control
character in a header name or value raises :class:`HeaderInjectionError` naming the header,
instead of being silently folded or stripped.  Non-ASCII display names and subjects are
RFC 2047 encoded; a header line never exceeds 998 octets.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII except ':'
_MAX_LINE = 998


class HeaderInjectionError(ValueError):
    """A header name or value contained CR, LF or another control character."""


def check_header(name: str, value: str) -> str:
    if not isinstance(value, str):
        raise HeaderInjectionError(f"header {name!r} must be text, got {type(value).__name__}")
    if _CONTROL.search(value):
        raise HeaderInjectionError(f"header {name!r} contains a control character (CR/LF/...): {value[:60]!r}")
    return value


def check_header_name(name: str) -> str:
    if not _HEADER_NAME.match(name or ""):
        raise HeaderInjectionError(f"header name {name[:60]!r} contains a control character (CR/LF/...) or ':'")
    return name


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
    reply_to: str = ""


def build_message(mail: OutgoingEmail, now: datetime | None = None) -> EmailMessage:
    """The reference builder (standard library)."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = formataddr((check_header("From", mail.from_name), check_header("From", mail.from_address)))
    msg["To"] = formataddr((check_header("To", mail.to_name), check_header("To", mail.to_address)))
    if mail.reply_to:
        msg["Reply-To"] = check_header("Reply-To", mail.reply_to)
    msg["Subject"] = check_header("Subject", mail.subject)
    msg["Date"] = format_datetime(now or datetime.now(timezone.utc))
    msg["Message-ID"] = check_header("Message-ID", mail.message_id or make_msgid(domain=mail.from_address.rpartition("@")[2]))
    msg["MIME-Version"] = "1.0"
    for name, value in mail.headers.items():
        msg[check_header_name(name)] = check_header(name, value)
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    if mail.images:
        html_part = msg.get_payload()[1]
        for image in mail.images:
            html_part.add_related(image.png, maintype="image", subtype="png", cid=f"<{image.cid}>", filename=image.filename)
    return msg


# -- the fast builder ----------------------------------------------------------------------------
def encode_word(text: str) -> str:
    """``text`` as a header value: as is when printable ASCII, else RFC 2047 base64 words (folded)."""
    if text.isascii():
        return text
    words, chunk, size = [], [], 0
    for ch in text:
        n = len(ch.encode("utf-8"))
        if size + n > 42:  # 42 bytes -> 56 base64 chars -> a 68-char encoded word
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(ch)
        size += n
    words.append("".join(chunk))
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words)


def format_address(name: str, address: str) -> str:
    """``Name <addr>`` with the name quoted or RFC 2047 encoded as needed."""
    if not address.isascii() or any(ch in address for ch in "<>\",; "):
        raise HeaderInjectionError(f"address {address[:60]!r} is not a plain ASCII addr-spec")
    if not name:
        return address
    if not name.isascii():
        return f"{encode_word(name)} <{address}>"
    if re.search(r"[()<>\[\]:;@\\,.\"]", name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends, always ending with one line break of the content."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    if not data.endswith(b"\n"):
        data += b"\n"
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    return encoded.replace(b"\n", b"\r\n")


def _b64(data: bytes) -> bytes:
    """Base64 in 76-character CRLF lines (one C call plus slicing; ``encodebytes`` loops in Python)."""
    enc = binascii.b2a_base64(data, newline=False)
    return b"\r\n".join([enc[i:i + 76] for i in range(0, len(enc), 76)]) + b"\r\n"


def _text_part(subtype: str, text: str) -> bytes:
    """A text part: quoted-printable when mostly ASCII (readable, no spam-filter penalty for
    base64-disguised text), base64 when not (QP would triple every CJK or accented byte)."""
    data = text.encode("utf-8")
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode()
    if len(data) - len(text) <= len(data) // 10:  # ≤ ~10 % of the bytes are non-ASCII
        return head + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + _qp(text)
    if not text.endswith("\n"):
        data += b"\n"
    return head + b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def _header_lines(pairs: list[tuple[str, str]]) -> bytes:
    out = []
    for name, value in pairs:
        line = f"{name}: {value}"
        for part in line.split("\r\n "):
            if len(part) > _MAX_LINE:
                raise HeaderInjectionError(f"header {name!r} is longer than {_MAX_LINE} characters")
        out.append(line)
    return ("\r\n".join(out) + "\r\n").encode("ascii")


def build_raw(mail: OutgoingEmail, now: datetime | None = None, boundary: str | None = None) -> bytes:
    """The message as CRLF bytes, built directly (see the module docstring)."""
    for name, value in (("From", mail.from_name), ("From", mail.from_address), ("To", mail.to_name),
                        ("To", mail.to_address), ("Subject", mail.subject), ("Reply-To", mail.reply_to)):
        check_header(name, value)
    message_id = check_header("Message-ID", mail.message_id or make_msgid(domain=mail.from_address.rpartition("@")[2]))
    if not message_id.isascii():
        raise HeaderInjectionError("header 'Message-ID' must be ASCII")
    pairs = [
        ("From", format_address(mail.from_name, mail.from_address)),
        ("To", format_address(mail.to_name, mail.to_address)),
    ]
    if mail.reply_to:
        pairs.append(("Reply-To", format_address("", mail.reply_to)))
    pairs += [
        ("Subject", encode_word(mail.subject)),
        ("Date", format_datetime(now or datetime.now(timezone.utc))),
        ("Message-ID", message_id),
        ("MIME-Version", "1.0"),
    ]
    for name, value in mail.headers.items():
        check_header_name(name)
        check_header(name, value)
        pairs.append((name, encode_word(value)))
    token = boundary or secrets.token_hex(12)
    outer, inner = f"=_vm_a_{token}", f"=_vm_r_{token}"
    pairs.append(("Content-Type", f'multipart/alternative; boundary="{outer}"'))
    text_part = _text_part("plain", mail.text)
    html_part = _text_part("html", mail.html)
    if mail.images:
        pieces = [b"--" + inner.encode() + b"\r\n" + html_part]
        for image in mail.images:
            check_header("Content-ID", image.cid)
            filename = check_header("filename", image.filename).replace('"', "")
            pieces.append(
                b"--" + inner.encode() + b"\r\n"
                + b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
                + f"Content-ID: <{image.cid}>\r\n".encode("ascii")
                + f'Content-Disposition: inline; filename="{filename}"\r\n\r\n'.encode("ascii")
                + _b64(image.png)[:-2]
            )
        second = (f'Content-Type: multipart/related; boundary="{inner}"\r\n\r\n'.encode()
                  + b"".join(_ensure_crlf(p) for p in pieces)
                  + b"--" + inner.encode() + b"--\r\n")
    else:
        second = html_part
    body = (
        b"--" + outer.encode() + b"\r\n" + _ensure_crlf(text_part)
        + b"--" + outer.encode() + b"\r\n" + _ensure_crlf(second)
        + b"--" + outer.encode() + b"--\r\n"
    )
    return _header_lines(pairs) + b"\r\n" + body


def _ensure_crlf(part: bytes) -> bytes:
    """The part followed by the CRLF that belongs to the next boundary delimiter (RFC 2046)."""
    return part + b"\r\n"
