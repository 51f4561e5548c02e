"""Progress lines for long loops: count, rate and ETA, at most one line every few seconds.

Pure code.  The assets pass a callable that writes each line to the run's event log and to
the terminal; the interval (``[emails] progress_interval_s``) keeps a million-customer loop
from flooding either.
"""

from __future__ import annotations

import time
from typing import Callable


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


class Progress:
    """``advance()`` once per item; a line goes to ``emit`` when ``interval_s`` has passed since the last one.

    ``done()`` always emits the final line (with the total time), so even a short loop says it finished.
    """

    def __init__(self, what: str, total: int, emit: Callable[[str], None] | None, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.total, self.emit, self.interval_s, self.clock = what, total, emit, interval_s, clock
        self.count = 0
        self.started = self.last = clock()

    def line(self) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.count / elapsed
        text = f"{self.what}: {self.count:,} of {self.total:,}"
        if self.total:
            text += f" ({100 * self.count / self.total:.1f}%)"
        text += f", {rate:,.0f}/s"
        if self.count >= self.total:
            return text + f", done in {_duration(elapsed)}"
        return text + (f", ETA {_duration((self.total - self.count) / rate)}" if rate > 0 else "")

    def advance(self, n: int = 1) -> None:
        self.count += n
        if self.emit is not None and self.count < self.total and self.clock() - self.last >= self.interval_s:
            self.last = self.clock()
            self.emit(self.line())

    def done(self) -> None:
        if self.emit is not None:
            self.emit(self.line())
