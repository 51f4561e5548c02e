"""End-to-end benchmark: the real weekly, monthly and yearly jobs, run as a user runs them.

``uv run python -m bench --e2e --customers 20000`` (issue #14):

1. ``valuemail sample-data --customers N --seed S`` into ``<workdir>/home/landing`` (kept for the next run);
2. ``valuemail ingest`` (all files, timed);
3. an SMTP sink (``python -m delivery.smtp_sink --fast-data --pipelining``) and a config file sending
   to it (``--transport file`` writes .eml files instead);
4. ``valuemail run --campaign weekly``, then monthly, then yearly — through Dagster, each run's
   ingest finds no new files.  While a run goes, the RSS of its whole process tree (chart workers
   included) is sampled every 0.2 s;
5. from each run's own event log (the Dagster instance under ``<home>/dagster``): the wall time of
   every step (asset or check) and the peak RSS sampled during it; the total; customers and
   e-mails per second;
6. the floors, measured in the same run after the jobs (the machine is shared): a plain DuckDB
   scan of the events, PNG charts per core (``charts.render_weekly``), compile-once e-mail renders
   per core, messages per second into the same SMTP sink over one connection.

A failed command or run stops the benchmark with its output and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import smtplib
import subprocess
import sys
import threading
import time
from typing import Any

CAMPAIGNS = ("weekly", "monthly", "yearly")
PAGE = os.sysconf("SC_PAGE_SIZE")


class BenchFailed(RuntimeError):
    pass


# ------------------------------------------------------------------------------- process tree RSS
TICK = os.sysconf("SC_CLK_TCK")


def _tree_usage(root: int) -> tuple[int, float]:
    """(RSS bytes, CPU seconds) of ``root`` and every live descendant; a process's CPU includes its
    reaped children's (``cutime``/``cstime``), so finished chart workers still count."""
    stats: dict[int, list[str]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    stats[int(name)] = fh.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                pass
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, f in stats.items() if int(f[1]) == pid and p not in tree]
        tree.update(kids)
        frontier.extend(kids)
    rss = cpu = 0
    for pid in tree & stats.keys():
        fields = stats[pid]  # after "comm)": state ppid … utime(11) stime(12) cutime(13) cstime(14) … rss(21)
        cpu += sum(int(x) for x in fields[11:15])
        rss += int(fields[21]) * PAGE
    return rss, cpu / TICK


class UsageSampler(threading.Thread):
    """Samples (unix time, RSS bytes, CPU seconds) of ``pid``'s process tree until stopped."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s, self.samples = pid, every_s, []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append((time.time(), *_tree_usage(self.pid)))
            self.stopped.wait(self.every_s)

    def peak_mb(self, start: float = 0.0, end: float = float("inf")) -> float | None:
        inside = [rss for t, rss, _ in self.samples if start <= t <= end]
        return round(max(inside) / 2**20) if inside else None

    def cpu_s(self, start: float = 0.0, end: float = float("inf")) -> float | None:
        """CPU seconds used between ``start`` and ``end`` (the nearest samples inside)."""
        inside = [cpu for t, _, cpu in self.samples if start <= t <= end]
        return round(max(inside) - inside[0], 1) if inside else None


# ------------------------------------------------------------------------------- commands
def _valuemail(home: pathlib.Path, config: pathlib.Path | None, *args: str, sample: bool = False) -> tuple[float, UsageSampler, str]:
    """Run ``valuemail [--config] --home HOME args…`` as a user does; wall seconds, RSS samples, stdout."""
    exe = pathlib.Path(sys.executable).with_name("valuemail")
    cmd = [str(exe), "--home", str(home)] + (["--config", str(config)] if config else []) + list(args)
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "VALUEMAIL_HOME", "VALUEMAIL_CONFIG")}
    env.setdefault("VALUEMAIL_EMAIL_SCREENSHOT", "0")
    print(f"$ valuemail {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env)  # progress → terminal
    sampler = UsageSampler(proc.pid)
    sampler.start()
    out, _ = proc.communicate()
    sampler.stopped.set()
    sampler.join()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise BenchFailed(f"valuemail {' '.join(args)} failed (exit {proc.returncode}):\n{out[-3000:]}")
    return wall, sampler, out


def _start_sink(folder: pathlib.Path) -> tuple[subprocess.Popen, int]:
    port_file = folder / "sink.port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "delivery.smtp_sink", "--port", "0", "--port-file", str(port_file),
                             "--fast-data", "--pipelining"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchFailed("the SMTP sink did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


# ------------------------------------------------------------------------------- the event log
def run_steps(dagster_home: pathlib.Path, sampler: UsageSampler) -> tuple[str, list[dict[str, Any]]]:
    """The newest run's status and, per step (asset or check), its wall time and the peak RSS during it."""
    import dagster as dg
    from dagster import DagsterEventType

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        run = instance.get_runs(limit=1)[0]
        starts: dict[str, float] = {}
        steps: list[dict[str, Any]] = []
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or not entry.step_key:
                continue
            if event.event_type == DagsterEventType.STEP_START:
                starts[entry.step_key] = entry.timestamp
            elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                start = starts.get(entry.step_key, entry.timestamp)
                steps.append({"step": entry.step_key, "seconds": round(entry.timestamp - start, 2),
                              "cpu_s": sampler.cpu_s(start, entry.timestamp),
                              "peak_rss_mb": sampler.peak_mb(start, entry.timestamp),
                              "status": "ok" if event.event_type == DagsterEventType.STEP_SUCCESS else "FAILED"})
        return run.status.value, steps


def _counts(warehouse: pathlib.Path, campaign: str) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        def one(sql: str) -> int:
            return int(con.execute(sql, [campaign]).fetchone()[0])

        latest = "(SELECT max(period) FROM eligibility WHERE campaign = $1)"
        return {
            "customers": int(con.execute("SELECT count(*) FROM customers").fetchone()[0]),
            "to_send": one(f"SELECT count(*) FROM eligibility WHERE campaign = $1 AND period = {latest} AND reason = 'send'"),
            "charts": one(f"SELECT count(*) FROM email_charts WHERE campaign = $1 AND period = {latest}"),
            "emails": one(f"SELECT count(*) FROM emails WHERE campaign = $1 AND period = {latest}"),
            "sent": one(f"SELECT count(*) FROM outbox WHERE campaign = $1 AND period = {latest} AND status = 'sent'"),
        }
    finally:
        con.close()


# ------------------------------------------------------------------------------- floors
def floors(home: pathlib.Path, port: int | None) -> dict[str, Any]:
    """What the stages are compared with, measured now (same machine, same load)."""
    import duckdb

    from bench.stage_charts import synthetic_weeks
    from charts import render_weekly
    from report_templates import samples
    from report_templates.render import EmailRenderer

    out: dict[str, Any] = {}
    con = duckdb.connect(str(home / "valuemail.duckdb"), read_only=True)
    t = time.perf_counter()
    rows = con.execute("SELECT count(*) FROM (SELECT customer_id, count(*), sum(quantity) FROM events GROUP BY 1)").fetchone()[0]
    out["duckdb_scan_group_by_customer_s"] = round(time.perf_counter() - t, 2)
    out["duckdb_scan_events"] = int(con.execute("SELECT count(*) FROM events").fetchone()[0])
    out["duckdb_scan_customers"] = int(rows)
    con.close()

    weeks = synthetic_weeks(600, 600 * 50, 7)
    render_weekly(weeks[0])  # this process's cached figure
    t = time.process_time()
    for values in weeks[1:]:
        render_weekly(values)
    out["png_weekly_charts_per_cpu_s"] = round((len(weeks) - 1) / (time.process_time() - t))

    renderer = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS)
    data = samples.synthetic(2000, seed=7, campaign="weekly")
    for d in data:
        renderer.render(d)  # every layout compiled once
    t = time.process_time()
    for d in data:
        renderer.render(d)
    out["email_renders_per_cpu_s"] = round(len(data) / (time.process_time() - t))

    if port is not None:
        # ~30 KB, like a rendered e-mail with its charts
        message = b"From: bench@valuemail.example\r\nSubject: floor\r\n\r\n" + (b"y" * 76 + b"\r\n") * 400
        n = 2000
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            t = time.perf_counter()
            for i in range(n):
                smtp.sendmail("bench@valuemail.example", [f"floor{i}@example.com"], message)
            out["smtp_sink_msgs_per_s_one_connection"] = round(n / (time.perf_counter() - t))
    return out


# ------------------------------------------------------------------------------- the benchmark
def run(workdir: pathlib.Path, customers: int, seed: int, transport: str = "smtp",
        campaigns: tuple[str, ...] = CAMPAIGNS) -> dict[str, Any]:
    home = workdir / "home"
    landing = home / "landing"
    result: dict[str, Any] = {"customers": customers, "seed": seed, "transport": transport, "cpus": os.cpu_count(),
                              "load_average_before": round(os.getloadavg()[0], 2)}
    if not (landing.exists() and any(landing.rglob("*.parquet"))):
        if home.exists():
            shutil.rmtree(home)
        wall, _, _ = _valuemail(home, None, "sample-data", "--customers", str(customers), "--seed", str(seed))
        result["sample_data_s"] = round(wall, 1)
    for stale in ("valuemail.duckdb", "valuemail.duckdb.wal", "dagster", "charts", "emails", "outbox", "share"):
        target = home / stale
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    for other in home.glob("*.sqlite*"):
        other.unlink()
    wall, sampler, _ = _valuemail(home, None, "ingest", str(landing))
    result["ingest"] = {"seconds": round(wall, 1), "cpu_s": sampler.cpu_s(), "peak_rss_mb": sampler.peak_mb()}

    sink = port = None
    config = workdir / "e2e.toml"
    if transport == "smtp":
        sink, port = _start_sink(workdir)
        config.write_text(f'[delivery]\ntransport = "smtp"\n[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\n')
    else:
        config.write_text('[delivery]\ntransport = "file"\n')
    try:
        for campaign in campaigns:
            wall, sampler, _ = _valuemail(home, config, "run", "--campaign", campaign)
            status, steps = run_steps(home / "dagster", sampler)
            if status != "SUCCESS" or any(s["status"] != "ok" for s in steps):
                raise BenchFailed(f"{campaign} run ended {status}: {[s for s in steps if s['status'] != 'ok']}")
            counts = _counts(home / "valuemail.duckdb", campaign)
            result[campaign] = {"seconds": round(wall, 1), "cpu_s": sampler.cpu_s(), "peak_rss_mb": sampler.peak_mb(),
                                "steps": steps, **counts, "customers_per_s": round(counts["customers"] / wall),
                                "emails_per_s": round(counts["sent"] / wall)}
            print(format_campaign(campaign, result[campaign]), file=sys.stderr, flush=True)  # as soon as it is known
        result["floors"] = floors(home, port)
    finally:
        if sink is not None:
            sink.terminate()
            out, _ = sink.communicate(timeout=30)
            result["sink_said"] = out.strip().splitlines()[-1] if out.strip() else ""
    result["load_average_after"] = round(os.getloadavg()[0], 2)
    return result


def format_campaign(campaign: str, r: dict[str, Any]) -> str:
    lines = [f"{campaign}: {r['seconds']} s wall ({r['cpu_s']} CPU s), peak RSS {r['peak_rss_mb']} MB; "
             f"{r['to_send']:,} to send, {r['charts']:,} charts, {r['emails']:,} e-mails, {r['sent']:,} sent; "
             f"{r['customers_per_s']:,} customers/s, {r['emails_per_s']:,} e-mails/s"]
    width = max(len(s["step"]) for s in r["steps"])
    lines.append(f"  {'step':<{width}}  {'seconds':>8}  {'CPU s':>7}  {'peak RSS MB':>11}  {'per s (per CPU s)':>24}")
    items = {f"{campaign}__charts": (r["charts"], "charts"), f"{campaign}__emails": (r["emails"], "e-mails"),
             f"{campaign}__sent_emails": (r["sent"], "sent")}
    for s in r["steps"]:
        n, what = items.get(s["step"], (0, ""))
        rate = f"{n / s['seconds']:,.0f} ({n / s['cpu_s']:,.0f}) {what}" if n and s["seconds"] > 0 and s["cpu_s"] else ""
        lines.append(f"  {s['step']:<{width}}  {s['seconds']:>8.2f}  {s['cpu_s'] or 0:>7.1f}  {s['peak_rss_mb'] or '-':>11}  {rate:>24}")
    return "\n".join(lines)


def format_report(result: dict[str, Any]) -> str:
    lines = [f"end to end: {result['customers']:,} customers, transport {result['transport']}, "
             f"{result['cpus']} CPUs, load average {result['load_average_before']} → {result['load_average_after']}",
             f"ingest (all files): {result['ingest']['seconds']} s ({result['ingest']['cpu_s']} CPU s), "
             f"peak RSS {result['ingest']['peak_rss_mb']} MB"]
    lines += ["\n" + format_campaign(c, result[c]) for c in CAMPAIGNS if c in result]
    if result.get("sink_said"):
        lines.append(f"SMTP sink: {result['sink_said']} (the floor's messages included)")
    if "floors" in result:
        lines += ["", "floors (measured in this run, after the jobs; per CPU second where it says so):"]
        lines += [f"  {k:<40} {v:,}" for k, v in result["floors"].items()]
    return "\n".join(lines)


def main(workdir: pathlib.Path, customers: int, seed: int, transport: str, campaigns: list[str],
         json_path: pathlib.Path | None) -> int:
    try:
        result = run(workdir.resolve(), customers, seed, transport, tuple(campaigns))
    except BenchFailed as exc:
        print(f"\nE2E BENCHMARK FAILED: {exc}", file=sys.stderr)
        return 1
    print()
    print(format_report(result))
    if json_path:
        json_path.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--transport", choices=["smtp", "file"], default="smtp")
    parser.add_argument("--campaigns", default=",".join(CAMPAIGNS))
    parser.add_argument("--workdir", type=pathlib.Path, default=None)
    parser.add_argument("--json", type=pathlib.Path, default=None)
    args = parser.parse_args()
    sys.exit(main(args.workdir or pathlib.Path("bench-out") / f"e2e-{args.customers}c", args.customers, args.seed,
                  args.transport, args.campaigns.split(","), args.json))
