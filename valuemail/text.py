"""Text that came from data, made safe for a terminal, a log line or a header (pure).

Customer files can carry ESC, BEL, CR/LF and bidi overrides in any field; printed as they
are they recolour or rewrite a terminal, forge log lines or break a header.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the bidi embedding / override / isolate characters.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return _NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def printable(text: object) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\t``, ``\\u202e``)."""
    return _CONTROL.sub(_escape, str(text))


def one_line(text: str) -> str:
    """``text`` with every run of control characters and spaces as one space, trimmed (display names)."""
    return re.sub(" {2,}", " ", _CONTROL.sub(" ", text)).strip() if _CONTROL.search(text) else text
