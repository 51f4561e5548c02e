"""The SMTP transport: persistent connections to any SMTP server, one per worker thread.

Configuration (``[delivery.smtp]``; see ``config/valuemail.toml``): ``host``, ``port``,
``security`` (``none`` | ``starttls`` | ``tls``), ``username`` + the password in the
environment variable named by ``password_env``, ``verify_tls`` / ``ca_file``,
``timeout_s``, ``connections`` (workers), ``max_messages_per_connection``,
``local_hostname``, ``pipelining``, ``reconcile_log`` and ``reconcile_log_authoritative``.

One message is one SMTP transaction (MAIL, RCPT, DATA) on a connection that stays open for
the whole run (``TCP_NODELAY``; with ``PIPELINING`` (RFC 2920), when the server offers it,
MAIL, RCPT and DATA go out in one write and the content in a second: two round trips per
message instead of four).  What the server said decides the outcome, phase by phase:

============================  ==============================================================
phase                         on a 4xx / 5xx reply          on a broken connection / timeout
============================  ==============================================================
MAIL FROM                     transient / run stops         reconnect once, then transient
RCPT TO                       transient / **permanent**     reconnect once, then transient
DATA (354 expected)           transient / permanent         reconnect once, then transient
sending the content + ``.``   —                             transient: without the final dot
                                                            no server accepts a message
waiting for the final reply   transient / permanent         **unknown**: the server may have
                                                            accepted it
============================  ==============================================================

So only a connection lost while waiting for the reply to the final dot leaves a message in
doubt — at most one per connection.  Reconcile then looks its Message-ID up in
``reconcile_log``: an SQLite file with a ``received(message_id)`` table (the test and bench
sink, :mod:`delivery.smtp_sink`), or a text log with ``message-id=<…>`` lines (Postfix
``cleanup`` writes one per accepted message).  Without a log the message stays ``unknown``.
"""

from __future__ import annotations

import os
import re
import smtplib
import socket
import sqlite3
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from delivery.transports.base import (
    Envelope,
    LookupItem,
    OutcomeUnknown,
    PermanentFailure,
    TransientFailure,
    TransportUnavailable,
)

_MSGID_RE = re.compile(rb"message-id[=:]\s*(<[^>\s]+>)", re.IGNORECASE)


@dataclass(frozen=True)
class SMTPSettings:
    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"           # none | starttls | tls
    username: str = ""
    password: str = ""
    verify_tls: bool = True
    ca_file: str = ""
    timeout_s: float = 30.0
    connections: int = 4
    max_messages_per_connection: int = 0
    local_hostname: str = ""
    reconcile_log: str = ""
    reconcile_log_authoritative: bool = True
    pipelining: bool = True

    @classmethod
    def from_config(cls, section: Mapping[str, object], environ: Mapping[str, str] | None = None) -> "SMTPSettings":
        env = os.environ if environ is None else environ
        security = str(section.get("security", "none")).lower()
        if security not in ("none", "starttls", "tls"):
            raise ValueError(f"delivery.smtp.security: expected none, starttls or tls, got {security!r}")
        password_env = str(section.get("password_env", "VALUEMAIL_SMTP_PASSWORD"))
        return cls(
            host=str(section.get("host", "127.0.0.1")),
            port=int(section.get("port", 465 if security == "tls" else 25)),  # type: ignore[arg-type]
            security=security,
            username=str(section.get("username", "")),
            password=str(env.get(password_env, "")),
            verify_tls=bool(section.get("verify_tls", True)),
            ca_file=str(section.get("ca_file", "")),
            timeout_s=float(section.get("timeout_s", 30)),  # type: ignore[arg-type]
            connections=max(1, int(section.get("connections", 4))),  # type: ignore[arg-type]
            max_messages_per_connection=int(section.get("max_messages_per_connection", 0)),  # type: ignore[arg-type]
            local_hostname=str(section.get("local_hostname", "")),
            reconcile_log=str(section.get("reconcile_log", "")),
            reconcile_log_authoritative=bool(section.get("reconcile_log_authoritative", True)),
            pipelining=bool(section.get("pipelining", True)),
        )


class SMTPTransport:
    name = "smtp"

    def __init__(self, settings: SMTPSettings):
        self.settings = settings
        self.workers = settings.connections
        self.lookup_is_authoritative = bool(settings.reconcile_log) and settings.reconcile_log_authoritative

    def tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.settings.ca_file or None)
        if not self.settings.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def session(self) -> "SMTPSession":
        return SMTPSession(self)

    def describe(self) -> str:
        s = self.settings
        auth = f", auth as {s.username}" if s.username else ""
        return f"SMTP {s.host}:{s.port} ({s.security}{auth}), {s.connections} persistent connection(s)"

    # -- reconcile ------------------------------------------------------------------------
    def lookup(self, items: Iterable[LookupItem]) -> dict[str, str | None]:
        wanted = {item.message_id for item in items}
        log = self.settings.reconcile_log
        if not wanted or not log:
            return {}
        path = Path(log)
        if path.suffix in (".sqlite", ".sqlite3", ".db"):
            return lookup_sqlite(path, wanted)
        return lookup_text_log(path, wanted)

    def close(self) -> None:
        pass


def lookup_sqlite(path: Path, wanted: set[str]) -> dict[str, str | None]:
    """Message-IDs found in ``received(message_id)`` of an SQLite server log (read-only)."""
    if not path.exists():
        return {}
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        found: dict[str, str | None] = {}
        ids = list(wanted)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for (mid,) in con.execute(f"SELECT DISTINCT message_id FROM received WHERE message_id IN ({marks})", chunk):
                found[mid] = "found in the server log"
        return found
    finally:
        con.close()


def lookup_text_log(path: Path, wanted: set[str]) -> dict[str, str | None]:
    """Message-IDs found as ``message-id=<…>`` (Postfix) or ``Message-ID: <…>`` in a text log."""
    found: dict[str, str | None] = {}
    targets = {mid.encode() for mid in wanted}
    try:
        with path.open("rb") as fh:
            for line in fh:
                for match in _MSGID_RE.finditer(line):
                    if match.group(1) in targets:
                        found[match.group(1).decode()] = "found in the server log"
    except FileNotFoundError:
        return {}
    return found


class SMTPSession:
    """One persistent connection (opened lazily, reopened after a failure)."""

    def __init__(self, transport: SMTPTransport):
        self.transport = transport
        self.settings = transport.settings
        self.conn: smtplib.SMTP | None = None
        self.sent_on_connection = 0
        self.size_limit = 0
        self.pipelining = False

    # -- connection -------------------------------------------------------------------------
    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        local = s.local_hostname or None
        try:
            if s.security == "tls":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, local_hostname=local, timeout=s.timeout_s,
                                              context=self.transport.tls_context())
            else:
                conn = smtplib.SMTP(s.host, s.port, local_hostname=local, timeout=s.timeout_s)
            conn.ehlo()
            if s.security == "starttls":
                if not conn.has_extn("starttls"):
                    conn.close()
                    raise TransportUnavailable(f"{s.host}:{s.port} does not offer STARTTLS (security = starttls)")
                conn.starttls(context=self.transport.tls_context())
                conn.ehlo()
            if s.username:
                conn.login(s.username, s.password)
        except TransportUnavailable:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportUnavailable(f"SMTP authentication as {s.username!r} failed: {exc.smtp_code} {exc.smtp_error!r}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportUnavailable(f"cannot connect to SMTP {s.host}:{s.port}: {exc}") from exc
        size = conn.esmtp_features.get("size", "")
        self.size_limit = int(size) if size.isdigit() else 0
        self.pipelining = self.settings.pipelining and conn.has_extn("pipelining")
        try:  # our writes are whole commands / whole messages: Nagle's algorithm only adds latency
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
        except (OSError, AttributeError):
            pass
        self.sent_on_connection = 0
        return conn

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except Exception:
                pass
        self._drop()

    # -- one message ------------------------------------------------------------------------
    def send(self, envelope: Envelope, data: bytes) -> str:
        limit = self.settings.max_messages_per_connection
        if self.conn is not None and limit and self.sent_on_connection >= limit:
            self.close()
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self._connect()
            try:
                reply = self._transaction(self.conn, envelope, data)
            except _NotHandedOver as exc:
                # The connection broke before the server could have accepted anything: safe to retry.
                self._drop()
                if attempt == 1:
                    continue
                raise TransientFailure(f"connection lost before the message was handed over: {exc}") from exc
            self.sent_on_connection += 1
            return reply
        raise AssertionError("unreachable")

    def _transaction(self, conn: smtplib.SMTP, envelope: Envelope, data: bytes) -> str:
        if self.size_limit and len(data) > self.size_limit:
            raise PermanentFailure(f"message of {len(data)} bytes exceeds the server's SIZE {self.size_limit}")
        for value in (envelope.sender, envelope.recipient):
            if any(ch in value for ch in "\r\n<>\x00") or not value.isascii():
                raise PermanentFailure(f"envelope address {value[:60]!r} is not a plain ASCII address")
        size = f" SIZE={len(data)}" if conn.has_extn("size") else ""
        mail_cmd = f"MAIL FROM:<{envelope.sender}>{size}\r\n".encode("ascii")
        rcpt_cmd = f"RCPT TO:<{envelope.recipient}>\r\n".encode("ascii")
        if self.pipelining:
            # RFC 2920: one write for MAIL, RCPT and DATA, then the three replies in order.
            self._write(conn, mail_cmd + rcpt_cmd + b"DATA\r\n")
            mail, rcpt, start = self._reply(conn), self._reply(conn), self._reply(conn)
        else:
            self._write(conn, mail_cmd)
            mail = self._reply(conn)
            rcpt = start = (503, b"skipped")
            if mail[0] < 400:
                self._write(conn, rcpt_cmd)
                rcpt = self._reply(conn)
                if rcpt[0] in (250, 251):
                    self._write(conn, b"DATA\r\n")
                    start = self._reply(conn)
        if mail[0] >= 400 or rcpt[0] not in (250, 251) or start[0] != 354:
            if start[0] == 354:
                self._drop()  # a confused server opened DATA anyway: hang up, never send a final "."
            else:
                self._reset(conn)
            code, text = mail
            if code >= 400:
                if code == 552:
                    raise PermanentFailure(f"MAIL FROM refused: {code} {_text(text)}")
                if code >= 500:
                    raise TransportUnavailable(f"the server refuses our sender {envelope.sender}: {code} {_text(text)}")
                raise TransientFailure(f"MAIL FROM deferred: {code} {_text(text)}")
            code, text = rcpt
            if code not in (250, 251):
                if code >= 500:
                    raise PermanentFailure(f"recipient refused: {code} {_text(text)}")
                raise TransientFailure(f"recipient deferred: {code} {_text(text)}")
            code, text = start
            if code >= 500:
                raise PermanentFailure(f"DATA refused: {code} {_text(text)}")
            raise TransientFailure(f"DATA deferred: {code} {_text(text)}")
        # Dot-stuffing in one C-level pass (the data is CRLF already: the MIME builder guarantees it;
        # smtplib's own data() would run two regex passes over every message).
        payload = data.replace(b"\r\n.", b"\r\n..")
        if payload.startswith(b"."):
            payload = b"." + payload
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        self._write(conn, payload + b".\r\n")  # if this fails, the final "." never arrived: not accepted
        try:
            code, text = _read_reply(conn)
        except (OSError, ValueError, smtplib.SMTPServerDisconnected) as exc:
            self._drop()
            raise OutcomeUnknown(f"connection lost waiting for the reply to the message: {exc}") from exc
        if code == 250:
            return _text(text) or "250"
        if code >= 500:
            raise PermanentFailure(f"message refused: {code} {_text(text)}")
        raise TransientFailure(f"message deferred: {code} {_text(text)}")

    def _write(self, conn: smtplib.SMTP, data: bytes) -> None:
        try:
            conn.sock.sendall(data)  # type: ignore[union-attr]
        except (OSError, AttributeError) as exc:
            raise _NotHandedOver(f"{type(exc).__name__}: {exc}") from exc

    def _reply(self, conn: smtplib.SMTP) -> tuple[int, bytes]:
        try:
            return _read_reply(conn)
        except (OSError, ValueError, smtplib.SMTPException) as exc:
            raise _NotHandedOver(f"{type(exc).__name__}: {exc}") from exc

    def _reset(self, conn: smtplib.SMTP) -> None:
        try:
            conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()


def _read_reply(conn: smtplib.SMTP) -> tuple[int, bytes]:
    """One (possibly multi-line) reply: smtplib's getreply without its per-line bookkeeping."""
    if conn.file is None:
        conn.file = conn.sock.makefile("rb")  # type: ignore[union-attr]
    lines = []
    while True:
        line = conn.file.readline(8193)
        if not line:
            conn.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if len(line) > 8192:
            raise smtplib.SMTPResponseException(500, "Line too long.")
        lines.append(line[4:].strip(b" \t\r\n"))
        if line[3:4] != b"-":
            return int(line[:3]), b"\n".join(lines)


class _NotHandedOver(Exception):
    """The connection broke before the end of DATA: the server cannot have accepted the message."""


def _text(value: bytes | str) -> str:
    return (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)).replace("\n", " ")[:300]

