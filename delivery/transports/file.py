"""The file transport: a dry-run outbox of ``.eml`` files (the embedded default).

Each message is written to ``<outbox>/<campaign>/<period>/<stem>.eml`` — ``valuemail.ids.file_stem``,
so every customer id has a file of its own — through a temporary file and an atomic rename, so a
file either exists whole or not at all: the lookup (does the file exist and carry our Message-ID?)
is authoritative.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from delivery.transports.base import Envelope, LookupItem, PermanentFailure, TransportUnavailable
from valuemail.ids import file_stem


@dataclass
class FileTransport:
    root: Path
    workers: int = 1
    fsync: bool = False
    name: str = "file"
    lookup_is_authoritative: bool = True

    def path_for(self, campaign: str, period: str, customer_id: str) -> Path:
        return Path(self.root) / campaign / period / f"{file_stem(customer_id)}.eml"

    def session(self) -> "FileTransport":
        return self

    def send(self, envelope: Envelope, data: bytes) -> str:
        target = self.path_for(envelope.campaign, envelope.period, envelope.customer_id)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
        except OSError as exc:
            raise TransportUnavailable(f"cannot write to the outbox {self.root}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise PermanentFailure(f"cannot write {target}: {exc}") from exc
        return str(target)

    def lookup(self, items: Iterable[LookupItem]) -> dict[str, str]:
        found = {}
        for item in items:
            path = self.path_for(item.campaign, item.period, item.customer_id)
            try:
                with path.open("rb") as fh:
                    head = fh.read(16384)
            except FileNotFoundError:
                continue
            if item.message_id.encode() in head:
                found[item.message_id] = str(path)
        return found

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return f"file outbox {self.root}"
