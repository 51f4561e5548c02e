"""Many charts on all cores: a process pool whose workers keep their cached figures.

Each worker process imports the chart modules once and then keeps its cached backgrounds,
palettes and text sprites for its whole life, so after the first chunk a worker renders at
the fast path's full speed.  Work is sent in chunks (one round trip per ``chunksize`` charts),
results come back in input order, and at most a few chunks per worker are in flight, so an
iterator over a million customers streams in bounded memory.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from typing import Any

from .model import Chart

_PRELOAD = ["charts.bars", "charts.peer", "charts.share"]


def _call(func: Callable[..., Chart], item: Any) -> Chart:
    if isinstance(item, Mapping):
        return func(**item)
    if isinstance(item, tuple):
        return func(*item)
    return func(item)


def _render_chunk(func: Callable[..., Chart], items: list) -> list[Chart]:
    return [_call(func, item) for item in items]


def _warm(func: Callable[..., Chart], item: Any) -> int:
    _call(func, item)
    return os.getpid()


def _context(method: str | None):
    if method is None:
        # forkserver: workers fork from a clean server that has matplotlib imported once —
        # fast to start and safe when the caller has threads (Dagster does); spawn elsewhere
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(_PRELOAD)
    return ctx


class ChartPool:
    """A reusable pool of chart worker processes (use as a context manager).

    ``workers`` defaults to the number of CPUs.  ``start_method`` is a multiprocessing start
    method (default: forkserver where available, else spawn).
    """

    def __init__(self, workers: int | None = None, *, start_method: str | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._executor = ProcessPoolExecutor(self.workers, mp_context=_context(start_method))

    def __enter__(self) -> ChartPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def warm(self, func: Callable[..., Chart], item: Any) -> None:
        """Start every worker and let it build its cached figure for ``func`` (best effort)."""
        futures = [self._executor.submit(_warm, func, item) for _ in range(self.workers * 2)]
        for f in futures:
            f.result()

    def map(self, func: Callable[..., Chart], items: Iterable[Any], *, chunksize: int = 64) -> Iterator[Chart]:
        """``func(*item)`` (tuple), ``func(**item)`` (mapping) or ``func(item)`` for each item,
        in order.  ``func`` must be importable (a module-level function such as
        :func:`charts.render_weekly`).  An exception in any item is raised here."""
        it = iter(items)
        pending: deque[Future] = deque()

        def submit() -> bool:
            chunk = list(islice(it, chunksize))
            if chunk:
                pending.append(self._executor.submit(_render_chunk, func, chunk))
            return bool(chunk)

        for _ in range(self.workers * 3):
            if not submit():
                break
        while pending:
            done = pending.popleft()
            submit()
            yield from done.result()


def render_many(func: Callable[..., Chart], items: Iterable[Any], workers: int | None = 2, *,
                chunksize: int = 64, start_method: str | None = None) -> Iterator[Chart]:
    """Render many charts, in input order, on ``workers`` processes (``1`` = in this process).

    ``items`` are argument tuples, keyword mappings or single arguments for ``func``::

        for chart in render_many(render_weekly, ((week, labels) for week in weeks), workers=2):
            ...
    """
    if workers is not None and workers <= 1:
        for item in items:
            yield _call(func, item)
        return
    with ChartPool(workers, start_method=start_method) as pool:
        yield from pool.map(func, items, chunksize=chunksize)
