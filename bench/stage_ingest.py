"""Bench stage ``ingest``: load ``workdir/landing`` into ``workdir/valuemail.duckdb``, Parquet and CSV.

Targets (issue: ingest): Parquet >= 3M events/s, CSV >= 1M events/s including validation,
peak RSS <= 4 GB at 50M events.  Measured in the same run, each in its own process (so each
has its own peak RSS):

* ``ingest`` of the Parquet landing into ``workdir/valuemail.duckdb`` (later stages use it);
* the same events as CSV (converted once into ``workdir/landing_csv`` if the landing is
  Parquet) ingested into a scratch warehouse, deleted afterwards;
* for each format, two baselines over the same files: a *plain scan*
  (``SELECT count(*), sum(quantity)``, the brief's yardstick) and a *plain load*
  (``CREATE TABLE AS SELECT *`` into a fresh DuckDB file: the floor for any loader that
  stores the rows, with no validation at all); the ratios ingest / baseline are printed.

Options (``--set key=value``): ``formats=parquet,csv`` (default both), ``keep_csv=1`` to keep
the CSV copies (default: kept, they are reused by the next run), ``baselines=0`` to skip them.
If ``workdir/landing`` holds no events, it is generated first with ``valuemail.sample_data``
(the ``sample_data`` stage does the same and times it).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import time

import bench

NAME = "ingest"
TARGETS = {"parquet": 3_000_000, "csv": 1_000_000}
RSS_TARGET_MB = 4096


# --------------------------------------------------------------------------------------
# Functions run in their own process (bench.run_isolated)
# --------------------------------------------------------------------------------------
def _reader(fmt: str, pattern: str) -> str:
    if fmt == "parquet":
        return f"read_parquet('{pattern}')"
    return f"read_csv('{pattern}', header = true)"


def plain_scan(pattern: str, fmt: str) -> dict:
    """``SELECT count(*), sum(quantity)`` over the event files: the brief's baseline."""
    import duckdb

    con = duckdb.connect()
    started, cpu = time.perf_counter(), _cpu()
    rows, quantity = con.execute(f"SELECT count(*), sum(quantity) FROM {_reader(fmt, pattern)}").fetchone()
    return {"seconds": time.perf_counter() - started, "cpu_s": _cpu() - cpu, "rows": int(rows),
            "quantity": int(quantity or 0)}


def _cpu() -> float:
    """CPU seconds of this process, all threads: a figure other work on the machine hardly moves."""
    t = os.times()
    return t.user + t.system


def plain_load(pattern: str, fmt: str, db: str) -> dict:
    """``CREATE TABLE AS SELECT *`` into a fresh DuckDB file: storing the rows, no checks."""
    import duckdb

    for leftover in (pathlib.Path(db), pathlib.Path(db + ".wal")):
        leftover.unlink(missing_ok=True)
    con = duckdb.connect(db)
    started, cpu = time.perf_counter(), _cpu()
    con.execute(f"CREATE TABLE events AS SELECT * FROM {_reader(fmt, pattern)}")
    con.execute("CHECKPOINT")
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    pathlib.Path(db).unlink(missing_ok=True)
    return {"seconds": seconds, "cpu_s": cpu, "rows": int(rows)}


def ingest_into(home: str, paths: list[str]) -> dict:
    """``valuemail.ingest.ingest_paths`` into a fresh warehouse under ``home``; the report's numbers."""
    from valuemail.config import load_config
    from valuemail.ingest import ingest_paths
    from valuemail.warehouse import connect

    config = load_config(home=home)
    for leftover in (config.warehouse_path, pathlib.Path(str(config.warehouse_path) + ".wal")):
        leftover.unlink(missing_ok=True)
    con = connect(config.warehouse_path)
    started, cpu = time.perf_counter(), _cpu()
    report = ingest_paths(con, paths, config, progress=lambda m: print(m, flush=True) if ": events" in m else None)
    con.execute("CHECKPOINT")
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    con.close()
    return {**report.metadata(), "seconds": seconds, "cpu_s": round(cpu, 1),
            "db_mb": round(config.warehouse_path.stat().st_size / 1e6, 1)}


def convert_to_csv(landing: str, out: str) -> dict:
    """Write a CSV copy of every Parquet file of the landing folder (DuckDB COPY, file by file)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    target = pathlib.Path(out)
    target.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    files = sorted(pathlib.Path(landing).glob("*.parquet"))
    for path in files:
        dest = target / (path.stem + ".csv")
        con.execute(f"COPY (SELECT * FROM read_parquet('{path}')) TO '{dest}.part' (HEADER, DELIMITER ',')")
        os.replace(f"{dest}.part", dest)
    return {"seconds": time.perf_counter() - started, "files": len(files),
            "megabytes": round(sum(p.stat().st_size for p in target.glob("*.csv")) / 1e6, 1)}


# --------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------
def _ensure_landing(landing: pathlib.Path, customers: int, events: int, seed: int) -> float | None:
    """Generate the landing folder when it has no event files; returns the seconds it took."""
    if any(landing.glob("events-*.parquet")) or any(landing.glob("events-*.csv")):
        return None
    from valuemail.sample_data import generate

    started = time.perf_counter()
    generate(landing, customers=customers, seed=seed, fmt="parquet", target_events=events)
    return round(time.perf_counter() - started, 1)


def _measure(fmt: str, files_dir: pathlib.Path, home: pathlib.Path, scratch: pathlib.Path,
             baselines: bool) -> dict:
    figures: dict = {}
    pattern = str(files_dir / f"events-*.{fmt}")
    ingest = bench.run_isolated("bench.stage_ingest:ingest_into", {"home": str(home), "paths": [str(files_dir)]})
    rate = ingest["events_loaded"] / ingest["seconds"] if ingest["seconds"] else 0.0
    figures.update({
        f"{fmt}_ingest_s": round(ingest["seconds"], 2),
        f"{fmt}_events_per_s": round(rate),
        f"{fmt}_events_loaded": ingest["events_loaded"],
        f"{fmt}_customers_loaded": ingest["customers_loaded"],
        f"{fmt}_rows_rejected": ingest["rows_rejected"],
        f"{fmt}_rows_flagged": ingest["rows_flagged"],
        f"{fmt}_cpu_s": ingest["cpu_s"],
        f"{fmt}_peak_rss_mb": ingest["peak_rss_mb"],
        f"{fmt}_warehouse_mb": ingest["db_mb"],
    })
    if baselines:
        scan = bench.run_isolated("bench.stage_ingest:plain_scan", {"pattern": pattern, "fmt": fmt})
        load = bench.run_isolated("bench.stage_ingest:plain_load",
                                  {"pattern": pattern, "fmt": fmt, "db": str(scratch / f"plain-load-{fmt}.duckdb")})
        figures.update({
            f"{fmt}_plain_scan_s": round(scan["seconds"], 2),
            f"{fmt}_ratio_to_plain_scan": round(ingest["seconds"] / scan["seconds"], 1) if scan["seconds"] else None,
            f"{fmt}_plain_load_s": round(load["seconds"], 2),
            f"{fmt}_plain_load_events_per_s": round(load["rows"] / load["seconds"]) if load["seconds"] else None,
            f"{fmt}_ratio_to_plain_load": round(ingest["seconds"] / load["seconds"], 2) if load["seconds"] else None,
            # CPU seconds: comparable even when other work on the machine slows the wall clock.
            f"{fmt}_plain_load_cpu_s": round(load["cpu_s"], 1),
            f"{fmt}_cpu_ratio_to_plain_load": round(ingest["cpu_s"] / load["cpu_s"], 2) if load["cpu_s"] else None,
            f"{fmt}_cpu_ratio_to_plain_scan": round(ingest["cpu_s"] / scan["cpu_s"], 1) if scan["cpu_s"] else None,
        })
    figures[f"{fmt}_meets_target"] = bool(rate >= TARGETS[fmt] and ingest["peak_rss_mb"] <= RSS_TARGET_MB)
    figures[f"{fmt}_target"] = f">= {TARGETS[fmt]:,} events/s, peak RSS <= {RSS_TARGET_MB} MB"
    return figures


def run(workdir: pathlib.Path, customers: int, events: int, seed: int) -> dict:
    """Ingest the landing folder as Parquet (the warehouse later stages use) and as CSV."""
    opts = bench.options()
    formats = [f.strip() for f in opts.get("formats", "parquet,csv").split(",") if f.strip()]
    baselines = opts.get("baselines", "1") != "0"
    workdir = pathlib.Path(workdir)
    landing = workdir / "landing"
    figures: dict = {"cpus": os.cpu_count(), "load_average_before": round(os.getloadavg()[0], 2)}
    generated = _ensure_landing(landing, customers, events, seed)
    if generated is not None:
        figures["generated_landing_s"] = generated
    scratch = workdir / "scratch"
    scratch.mkdir(exist_ok=True)
    landing_fmt = "parquet" if any(landing.glob("events-*.parquet")) else "csv"
    if "parquet" in formats and landing_fmt == "parquet":
        figures.update(_measure("parquet", landing, workdir, scratch, baselines))
    if "csv" in formats:
        csv_dir = landing if landing_fmt == "csv" else workdir / "landing_csv"
        if landing_fmt == "parquet" and not any(csv_dir.glob("events-*.csv")):
            converted = bench.run_isolated("bench.stage_ingest:convert_to_csv",
                                           {"landing": str(landing), "out": str(csv_dir)})
            figures["csv_convert_s"] = round(converted["seconds"], 1)
            figures["csv_megabytes"] = converted["megabytes"]
        # CSV goes into a scratch warehouse; the Parquet one (workdir/valuemail.duckdb) stays
        # for the later stages, unless the landing itself is CSV.
        home = workdir if landing_fmt == "csv" or "parquet" not in formats else scratch / "csv-home"
        figures.update(_measure("csv", csv_dir, home, scratch, baselines))
        if home != workdir:
            shutil.rmtree(home, ignore_errors=True)
        if opts.get("keep_csv", "1") == "0" and csv_dir != landing:
            shutil.rmtree(csv_dir, ignore_errors=True)
    first = "parquet" if "parquet_ingest_s" in figures else "csv"
    figures.update({
        "seconds": figures[f"{first}_ingest_s"],
        "peak_rss_mb": figures[f"{first}_peak_rss_mb"],   # the ingest's, not the baselines'
        "events": figures[f"{first}_events_loaded"],
        "customers": figures[f"{first}_customers_loaded"],
        "load_average_after": round(os.getloadavg()[0], 2),
    })
    shutil.rmtree(scratch, ignore_errors=True)
    return figures
