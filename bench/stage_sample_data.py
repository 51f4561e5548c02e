"""Bench stage: generate the synthetic landing data (Parquet) that later stages ingest.

Interface used by ``python -m bench``: ``NAME`` and ``run(workdir, customers, events, seed)``,
which writes into ``workdir / "landing"`` and returns the figures to print.  The framework
measures peak RSS itself.
"""

from __future__ import annotations

import pathlib
import time

from valuemail.sample_data import generate

NAME = "sample_data"


def run(workdir: pathlib.Path, customers: int, events: int, seed: int) -> dict:
    """Generate ``customers`` customers and exactly ``events`` events; return throughput figures."""
    landing = pathlib.Path(workdir) / "landing"
    started = time.perf_counter()
    summary = generate(landing, customers=customers, seed=seed, fmt="parquet", target_events=events)
    seconds = time.perf_counter() - started
    size = sum(path.stat().st_size for path in summary.files)
    return {
        "customers": summary.customers,
        "events": summary.events,
        "files": len(summary.files),
        "megabytes": round(size / 1e6, 1),
        "seconds": round(seconds, 2),
        "events_per_s": round(summary.events / seconds) if seconds > 0 else None,
    }
