"""A local SMTP server (aiosmtpd) that records what it receives — for tests, the benchmark and local runs.

Run it in its own process::

    uv run python -m delivery.smtp_sink --port 2525 --db data/sink.sqlite [--store data/inbox]

and point ``[delivery.smtp]`` at it (``host = "127.0.0.1"``, ``port = 2525``,
``reconcile_log = "data/sink.sqlite"``).  It prints ``READY <port>`` once it listens.

* ``--db``: every accepted message is recorded in ``received(message_id, rcpt, size,
  received_at, peer)`` (SQLite, WAL) and **committed before the server answers 250** — so the
  table is an authoritative record of what this server accepted, which the send loop's
  reconcile can look a Message-ID up in.  Duplicates are recorded too (that is what the
  exactly-once test counts).
* ``--store``: also write each message as ``<folder>/<n>.eml`` (look at real e-mails).
* ``--fast-data``: read the DATA section in 64 KiB chunks instead of aiosmtpd's line-by-line
  reader (which costs ~0.1 ms per 76-character line and caps a Python sink at ~500 messages/s
  for 30 KB messages), send the replies to pipelined commands in one write, and take a plain
  ``<local@domain>`` in MAIL / RCPT without aiosmtpd's full header parser; the protocol state
  machine and command handling are aiosmtpd's own.  The benchmark uses it.
* ``--pipelining``: advertise PIPELINING (RFC 2920); aiosmtpd already reads and answers
  pipelined commands strictly in order, so only the EHLO line is added.
* ``--delay-ms``: wait this long before answering each message (a slow server, so a test can
  kill the sender mid-batch).  ``--reject-prefix``/``--defer-prefix``: answer 550 / 451 to
  RCPT TO for recipients whose local part starts with it.
* ``--tls-cert``/``--tls-key``: offer STARTTLS (and require it); ``--auth user:password``:
  require AUTH PLAIN/LOGIN after STARTTLS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sqlite3
import ssl
import sys
import time
from pathlib import Path

from aiosmtpd.smtp import AuthResult, LoginPassword, SMTP

_MSGID = re.compile(rb"^message-id:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)
_SIMPLE_ADDR = re.compile(r"\s*<([^<>\s@\"]+@[^<>\s@]+)>(.*)\Z", re.DOTALL)


class Recorder:
    """The handler: records each message (before the 250) and applies the test knobs."""

    def __init__(self, db: str | None = None, store: str | None = None, delay_ms: float = 0,
                 reject_prefix: str = "", defer_prefix: str = "", pipelining: bool = False):
        self.con = None
        if db:
            self.con = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute("PRAGMA synchronous=NORMAL")
            self.con.execute("CREATE TABLE IF NOT EXISTS received "
                             "(message_id TEXT, rcpt TEXT, size INTEGER, received_at REAL, peer TEXT)")
            self.con.execute("CREATE INDEX IF NOT EXISTS received_mid ON received (message_id)")
        self.store = Path(store) if store else None
        if self.store:
            self.store.mkdir(parents=True, exist_ok=True)
        self.delay = delay_ms / 1000.0
        self.reject_prefix = reject_prefix.lower()
        self.defer_prefix = defer_prefix.lower()
        self.count = 0
        self.pipelining = pipelining

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            # aiosmtpd reads and answers commands strictly in order, which is all RFC 2920 asks.
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.lower().split("@", 1)[0]
        if self.reject_prefix and local.startswith(self.reject_prefix):
            return "550 5.1.1 No such user here"
        if self.defer_prefix and local.startswith(self.defer_prefix):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        content = envelope.original_content or b""
        head = content[: content.find(b"\r\n\r\n") + 2] if b"\r\n\r\n" in content else content
        match = _MSGID.search(head)
        message_id = match.group(1).decode("ascii", "replace") if match else ""
        self.count += 1
        if self.con is not None:
            self.con.executemany(
                "INSERT INTO received VALUES (?, ?, ?, ?, ?)",
                [(message_id, rcpt, len(content), time.time(), f"{session.peer[0]}:{session.peer[1]}")
                 for rcpt in envelope.rcpt_tos],
            )
        if self.store is not None:
            (self.store / f"{self.count:08d}.eml").write_bytes(content)
        return f"250 2.0.0 Ok: queued as {self.count}"


class FastDataSMTP(SMTP):
    """aiosmtpd's server with a chunked DATA reader and batched pipelined replies (see the module docstring)."""

    fast_data = True
    _pending: list[bytes] | None = None

    def _getaddr(self, arg: str):
        """With --fast-data, a plain ``<local@domain>`` is taken as is; anything else goes to
        aiosmtpd's full RFC 5322 parser (which costs ~0.1 ms a call: it defines a Protocol class
        and runs the email header parser for every MAIL and RCPT)."""
        if self.fast_data and arg:
            match = _SIMPLE_ADDR.match(arg)
            if match and (not self.local_part_limit or len(match.group(1).rpartition("@")[0]) <= self.local_part_limit):
                return match.group(1), match.group(2)
        return super()._getaddr(arg)

    async def push(self, status) -> None:
        """With --fast-data, replies to pipelined commands go out in one write (as Postfix does):
        a reply waits only while another complete command is already buffered."""
        if not self.fast_data:
            return await super().push(status)
        response = status if isinstance(status, bytes) else status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
        if self._pending is None:
            self._pending = []
        self._pending.append(response + b"\r\n")
        if b"\r\n" in self._reader._buffer:  # type: ignore[attr-defined]
            return  # the next pipelined command is already here: answer both together
        data = b"".join(self._pending)
        self._pending.clear()
        self._writer.write(data)
        await self._writer.drain()

    async def smtp_DATA(self, arg: str) -> None:
        if not self.fast_data:
            return await super().smtp_DATA(arg)
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        chunks: list[bytes] = []
        tail = b""
        size = 0
        while self.transport is not None:
            chunk = await self._reader.read(1 << 16)
            if not chunk:
                return  # connection closed mid-DATA: nothing accepted
            chunks.append(chunk)
            size += len(chunk)
            tail = (tail + chunk)[-5:]
            if tail == b"\r\n.\r\n" or (size == 3 and tail == b".\r\n"):
                break
        data = b"".join(chunks)
        content = b"\r\n" + data[:-3] if data != b".\r\n" else b"\r\n"
        content = content.replace(b"\r\n..", b"\r\n.")[2:]
        if self.data_size_limit and len(content) > self.data_size_limit:
            self._set_post_data_state()
            await self.push("552 Error: Too much mail data")
            return
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is None else status)


def _authenticator(credentials: str):
    user, _, password = credentials.partition(":")

    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
            and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)

    return check


async def serve(args: argparse.Namespace) -> None:
    handler = Recorder(args.db, args.store, args.delay_ms, args.reject_prefix, args.defer_prefix, args.pipelining)
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    kwargs: dict = {"data_size_limit": 50 * 1024 * 1024, "hostname": "sink.valuemail.test"}
    if tls is not None:
        kwargs.update(tls_context=tls, require_starttls=True)
    if args.auth:
        kwargs.update(authenticator=_authenticator(args.auth), auth_required=True, auth_require_tls=tls is not None)

    class Server(FastDataSMTP):
        fast_data = args.fast_data

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Server(handler, **kwargs), args.host, args.port,
                                      reuse_port=args.reuse_port or None)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(str(port))
        os.replace(tmp, args.port_file)
    print(f"READY {port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"received {handler.count} cpu_s {usage.ru_utime + usage.ru_stime:.3f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m delivery.smtp_sink", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525, help="0 = any free port (printed as READY <port>)")
    parser.add_argument("--port-file", default="", help="also write the port to this file")
    parser.add_argument("--db", default=None, help="SQLite file recording every accepted message")
    parser.add_argument("--store", default=None, help="folder to keep each message as .eml")
    parser.add_argument("--fast-data", action="store_true", help="chunked DATA reader")
    parser.add_argument("--reuse-port", action="store_true", help="SO_REUSEPORT (several sink processes, one port)")
    parser.add_argument("--pipelining", action="store_true", help="advertise PIPELINING (RFC 2920)")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--reject-prefix", default="")
    parser.add_argument("--defer-prefix", default="")
    parser.add_argument("--tls-cert", default="")
    parser.add_argument("--tls-key", default="")
    parser.add_argument("--auth", default="", help="user:password required (after STARTTLS when TLS is on)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:  # pragma: no cover
        pass


if __name__ == "__main__":
    sys.exit(main())
