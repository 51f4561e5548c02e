"""Benchmark framework: ``uv run python -m bench --customers N --events M --stages a,b,…``.

A *stage* is a module ``bench/stage_<name>.py`` with ``NAME = "<name>"`` and
``run(workdir: Path, customers: int, events: int, seed: int) -> dict`` returning its figures.
Stages run in order, each in a fresh Python subprocess (so peak RSS is per stage), sharing
one work folder: ``sample_data`` writes ``workdir/landing``, ``ingest`` builds
``workdir/valuemail.duckdb``, later stages read it.

Figures a stage returns that the table understands (all optional):

* ``seconds`` — the time of the work being measured (default: the stage's wall time);
* ``events`` / ``customers`` — how many were processed (default: the sizes asked for),
  giving the events/s and customers/s columns;
* ``peak_rss_mb`` — measured by the framework (the stage process and every process it
  started and waited for); a stage that also runs baselines can report the figure of the
  work itself under this key, the framework's measure is then shown as
  ``process_peak_rss_mb``.  Every other key is printed as an extra figure.

Stages can read free-form options given with ``--set key=value`` through :func:`options`.
Benchmarks print figures; they are not tests.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

BENCH_DIR = pathlib.Path(__file__).resolve().parent
OPTIONS_ENV = "VALUEMAIL_BENCH_OPTIONS"
CHILD_COMMAND = [sys.executable, "-m", "bench", "--child"]


class UnknownStage(ValueError):
    """A stage name that has no ``bench/stage_<name>.py``; the message lists the available ones."""


def available_stages(directory: pathlib.Path = BENCH_DIR) -> list[str]:
    """Stage names found as ``stage_<name>.py`` files, sorted."""
    return sorted(p.stem[len("stage_"):] for p in directory.glob("stage_*.py"))


def resolve_stages(names: Sequence[str], directory: pathlib.Path = BENCH_DIR) -> list[str]:
    """Check the requested stage names (order kept); UnknownStage names every available one."""
    known = available_stages(directory)
    wanted = [n.strip() for n in names if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise UnknownStage(f"unknown stage{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}; "
                           f"available: {', '.join(known) or '(none)'}")
    if not wanted:
        raise UnknownStage(f"no stages given; available: {', '.join(known)}")
    return wanted


def options() -> dict[str, str]:
    """The ``--set key=value`` options of this benchmark run (inside a stage process)."""
    return json.loads(os.environ.get(OPTIONS_ENV) or "{}")


def peak_rss_mb() -> float:
    """Peak resident set size of this process and of every child it has waited for, in MB."""
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return round(peak / 2**20 if sys.platform == "darwin" else peak / 1024, 1)  # bytes on macOS, KiB on Linux


def run_isolated(target: str, kwargs: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict:
    """Run ``module:function(**kwargs)`` in a fresh Python process; return its dict plus its peak RSS.

    For a stage that measures several things and wants each one's peak RSS separately.
    ``kwargs`` and the result must be JSON-serialisable (paths are passed as strings).
    The result gains ``peak_rss_mb`` and ``wall_s``.
    """
    payload = json.dumps({"target": target, "kwargs": dict(kwargs)}, default=str)
    started = time.perf_counter()
    proc = subprocess.run(CHILD_COMMAND, input=payload, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{target} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    sys.stderr.write(proc.stderr)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.setdefault("wall_s", round(wall, 3))
    return result


@dataclass
class StageResult:
    name: str
    ok: bool
    wall_s: float
    peak_rss_mb: float | None
    figures: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def seconds(self) -> float:
        value = self.figures.get("seconds")
        return float(value) if isinstance(value, (int, float)) and value > 0 else self.wall_s

    def rate(self, key: str, default: int) -> float | None:
        count = self.figures.get(key, default)
        if not isinstance(count, (int, float)) or not self.ok or self.seconds() <= 0:
            return None
        return count / self.seconds()


def run_stage(name: str, workdir: pathlib.Path, customers: int, events: int, seed: int,
              stage_options: Mapping[str, str] | None = None, echo: Callable[[str], None] = print) -> StageResult:
    """Run one stage in a fresh subprocess (``python -m bench --child``) and collect its figures."""
    payload = json.dumps({"stage": name, "workdir": str(workdir), "customers": customers, "events": events,
                          "seed": seed})
    env = {**os.environ, OPTIONS_ENV: json.dumps(dict(stage_options or {}))}
    started = time.perf_counter()
    # stderr streams through (stages' progress); stdout carries the JSON result as its last line.
    proc = subprocess.run(CHILD_COMMAND, input=payload, stdout=subprocess.PIPE,
                          text=True, env=env)
    wall = time.perf_counter() - started
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    for line in lines[:-1]:
        echo(line)
    try:
        result = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        result = {}
    if proc.returncode != 0 or "figures" not in result:
        return StageResult(name, False, wall, result.get("peak_rss_mb"), {},
                           result.get("error") or f"exit status {proc.returncode}")
    figures = dict(result["figures"])
    peak = result.get("peak_rss_mb")
    if isinstance(figures.get("peak_rss_mb"), (int, float)):
        figures["process_peak_rss_mb"] = peak
        peak = figures.pop("peak_rss_mb")
    return StageResult(name, True, wall, peak, figures)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def format_table(results: Sequence[StageResult], customers: int, events: int) -> str:
    """The summary table, then each stage's extra figures."""
    header = ["stage", "seconds", "events/s", "customers/s", "peak RSS MB", "status"]
    rows = [header]
    for r in results:
        rows.append([r.name, _fmt(round(r.seconds(), 2)), _fmt(r.rate("events", events)),
                     _fmt(r.rate("customers", customers)), _fmt(r.peak_rss_mb), "ok" if r.ok else "FAILED"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    for r in results:
        extras = {k: v for k, v in r.figures.items() if k != "seconds"}
        if r.error:
            lines.append(f"\n{r.name}: FAILED: {r.error}")
        if extras:
            lines.append(f"\n{r.name}:")
            width = max(map(len, extras))
            lines.extend(f"  {k:<{width}}  {_fmt(v)}" for k, v in extras.items())
    return "\n".join(lines)


def run_benchmark(stages: Sequence[str], workdir: pathlib.Path, customers: int, events: int, seed: int,
                  stage_options: Mapping[str, str] | None = None,
                  echo: Callable[[str], None] = print) -> list[StageResult]:
    """Run the stages in order; a failed stage stops the run (later ones would read its output)."""
    names = resolve_stages(stages)
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        echo(f"== stage {name}: {customers:,} customers, {events:,} events, workdir {workdir}")
        result = run_stage(name, workdir, customers, events, seed, stage_options, echo)
        echo(f"== stage {name}: {'done' if result.ok else 'FAILED'} in {result.wall_s:.1f}s")
        results.append(result)
        if not result.ok:
            break
    return results


def import_stage(name: str):
    """Import ``bench.stage_<name>`` and check it has the stage interface."""
    module = importlib.import_module(f"bench.stage_{name}")
    if not callable(getattr(module, "run", None)):
        raise UnknownStage(f"bench/stage_{name}.py has no run(workdir, customers, events, seed) function")
    return module


def child_main(payload: Mapping[str, Any]) -> int:
    """Inside the subprocess: run a stage (or a ``module:function``) and print one JSON line.

    Stage output other than that last line goes to stderr, so it never garbles the result.
    """
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        started = time.perf_counter()
        if "stage" in payload:
            module = import_stage(str(payload["stage"]))
            figures = module.run(pathlib.Path(payload["workdir"]), int(payload["customers"]),
                                 int(payload["events"]), int(payload["seed"]))
            result: dict[str, Any] = {"figures": dict(figures or {})}
        else:
            module_name, _, function = str(payload["target"]).partition(":")
            result = dict(getattr(importlib.import_module(module_name), function)(**payload.get("kwargs", {})))
        result["wall_s"] = round(time.perf_counter() - started, 3)
        result["peak_rss_mb"] = peak_rss_mb()
        code = 0
    except Exception as exc:  # report, don't hide: the parent prints it in the table
        import traceback

        traceback.print_exc()
        result, code = {"error": f"{type(exc).__name__}: {exc}", "peak_rss_mb": peak_rss_mb()}, 1
    finally:
        sys.stdout = real_stdout
    print(json.dumps(result, default=str), flush=True)
    return code
