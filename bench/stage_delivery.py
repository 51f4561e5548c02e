"""Benchmark stage ``delivery``: the send loop, ledger on, to a local SMTP sink; RSS at 10k and 50k messages.

Issue 5, item 8: delivery to a local SMTP sink (aiosmtpd in a separate process, minimal
handler) must reach >= 1,500 messages/s on 2 cores with the ledger on, and memory must be
flat in the number of messages.

Standalone-capable: the stage builds its own home under ``<workdir>/delivery-<n>/`` with
synthetic *rendered* messages — customers, period metrics, ``emails`` rows pointing at HTML
(28 KB, like the weekly template's output) and text files, two inline 8 KB PNG charts each
(``email_images``), the ``unsubscribe_url`` the emails stage stores, a
preference store with 1 % unsubscribed — so it does not depend on the other stages.  1,000
distinct rendered e-mails are cycled over the customers (the page cache makes reading one
of 50,000 files or one of 1,000 cost the same; it saves a gigabyte of disk).

What is timed, per size (each size in its own process, so peak RSS is per size):

* ``decide_s``: the eligibility decision for all customers;
* ``deliver_s``: :func:`delivery.send.deliver_period` — reconcile, enqueue every ``pending``
  row (committed before any send), claims and outcome commits per batch of 1,000 (ledger on),
  a preference read per chunk of 100 messages and a store-changed check before every send,
  the journal records around every transport call, MIME building (the emails stage's
  skeleton) and SMTP to the sink over 3 persistent connections (``--set connections=4`` for
  the configuration default; on loopback, more threads mostly add GIL contention).
  ``messages_per_s`` = sent / deliver_s.

The sink is ``python -m delivery.smtp_sink --fast-data --pipelining`` (aiosmtpd's protocol
handling with a chunked DATA reader, PIPELINING advertised, and a handler that only counts).  ``--set sink=stock`` uses aiosmtpd's
line-by-line DATA reader instead: at ~0.1 ms per 76-character line it is the bottleneck for
30 KB messages, which measures aiosmtpd rather than us.

    uv run python -m bench --stages delivery
    uv run python -m bench.stage_delivery --sizes 10000,50000        # standalone, prints figures
    uv run python -m bench --stages delivery --set sizes=2000 --set sink=stock
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import time

NAME = "delivery"
SECRET = "bench-only-secret-not-for-production-0123456789"
DEFAULT_SIZES = (10_000, 50_000)
DISTINCT = 1_000
PNG_HEADER = b"\x89PNG\r\n\x1a\n"


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _html(i: int, rng: random.Random, kb: int) -> str:
    rows: list[str] = []
    size = 0
    while size < kb * 1024:
        n = rng.randint(1, 400)
        rows.append(f'<tr><td style="padding:8px 0;font-family:Helvetica,Arial,sans-serif;font-size:15px;'
                    f'color:#1f2933">Automated workflows</td><td align="right" style="font-weight:700">{n} tasks · '
                    f'{n * 3} min</td></tr>\n')
        size += len(rows[-1])
    return (f'<!doctype html><html><body style="margin:0;background:#f4f6f8"><div style="display:none">You saved '
            f'{i % 97} hours</div><table role="presentation" width="100%">' + "".join(rows)
            + '<tr><td><img src="cid:weekly_activity.%d@valuemail" width="600" alt="Tasks per day"></td></tr>'
            '</table></body></html>' % i)


def build_home(home: pathlib.Path, n: int, seed: int, port: int, html_kb: int = 28, image_kb: int = 8, images: int = 2,
               connections: int = 3, batch_size: int = 1000, build_processes: int = 0):
    """A warehouse with ``n`` customers whose e-mails are rendered, and a config sending to the sink."""
    import duckdb  # noqa: F401

    from valuemail.config import load_config
    from valuemail.periods import Period
    from valuemail.warehouse import connect

    if home.exists():
        shutil.rmtree(home)
    files = home / "emails"
    files.mkdir(parents=True)
    rng = random.Random(seed)
    for i in range(DISTINCT):
        (files / f"{i}.html").write_text(_html(i, rng, html_kb), encoding="utf-8")
        (files / f"{i}.txt").write_text(f"Hi,\n\nthis week valuemail ran {i % 400} tasks for you.\n" * 12, encoding="utf-8")
        for k in range(images):
            (files / f"{i}-{k}.png").write_bytes(PNG_HEADER + rng.randbytes(image_kb * 1024))
    config = load_config(home=home, overrides={
        "delivery": {"transport": "smtp", "reconcile_grace_s": 0, "max_retry_wait_s": 0, "batch_size": batch_size,
                     "build_processes": build_processes,
                     "smtp": {"host": "127.0.0.1", "port": port, "connections": connections, "timeout_s": 30}},
        "preference_centre": {"secret": SECRET},
    })
    period = Period("weekly", __import__("datetime").date(2026, 11, 16))
    with connect(config.warehouse_path) as con:
        con.execute("CREATE TABLE customer_metrics (campaign VARCHAR, period DATE, customer_id VARCHAR, tasks BIGINT, "
                    "minutes_saved DECIMAL(18,2), money_saved DECIMAL(18,2), PRIMARY KEY (campaign, period, customer_id))")
        con.execute("CREATE TABLE emails (campaign VARCHAR, period DATE, customer_id VARCHAR, locale VARCHAR, "
                    "subject VARCHAR, preheader VARCHAR, html_path VARCHAR, text_path VARCHAR, unsubscribe_url VARCHAR, "
                    "PRIMARY KEY (campaign, period, customer_id))")
        con.execute("CREATE TABLE email_images (campaign VARCHAR, period DATE, customer_id VARCHAR, cid VARCHAR, "
                    "path VARCHAR, alt VARCHAR, content_type VARCHAR, kind VARCHAR)")
        p = {"n": n, "d": str(files), "distinct": DISTINCT, "period": period.start}
        con.execute("""INSERT INTO customers SELECT printf('b%07d', i), printf('user%d@c%d.example', i, i % 5000),
                       printf('Customer %d', i), 'en', 'UTC', 'pro', 'HU', TIMESTAMP '2026-01-05', NULL, NULL, NULL,
                       'bench', now() FROM range($n) t(i)""", {"n": n})
        con.execute("INSERT INTO customer_metrics SELECT 'weekly', $period, customer_id, 12, 36, 0 FROM customers",
                    {"period": period.start})
        con.execute("""INSERT INTO emails SELECT 'weekly', $period, customer_id, 'en',
                       'Your week: ' || (row_number() OVER () % 400) || ' tasks, ' || (row_number() OVER () % 97) || ' hours saved',
                       'preheader', $d || '/' || (row_number() OVER () % $distinct) || '.html',
                       $d || '/' || (row_number() OVER () % $distinct) || '.txt',
                       'https://valuemail.example/u/' || sha256(customer_id) FROM customers""",
                    {k: v for k, v in p.items() if k != "n"})
        for k in range(images):  # the weekly activity chart and the peer position, as the emails stage embeds them
            con.execute(f"""INSERT INTO email_images SELECT 'weekly', $period, customer_id,
                           'chart{k}.' || (row_number() OVER () % $distinct) || '@valuemail',
                           $d || '/' || (row_number() OVER () % $distinct) || '-{k}.png', 'Tasks per day', 'image/png',
                           'weekly_activity' FROM customers""", {kk: v for kk, v in p.items() if kk != "n"})
    from delivery.prefs import open_store

    with open_store(config) as store:
        for i in range(0, n, 100):  # 1 % unsubscribed: the decision and the send-time re-check see them
            store.unsubscribe(f"b{i:07d}", "page")
    return config, period


def _start_sink(folder: pathlib.Path, stock: bool) -> tuple[subprocess.Popen, int]:
    port_file = folder / "sink.port"
    port_file.unlink(missing_ok=True)
    args = [sys.executable, "-m", "delivery.smtp_sink", "--port", "0", "--port-file", str(port_file)]
    if not stock:
        args += ["--fast-data", "--pipelining"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the SMTP sink did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def measure(workdir: str, n: int, seed: int, sink: str = "fast", connections: int = 3, batch_size: int = 1000,
            html_kb: int = 28, images: int = 2, build_processes: int = 0) -> dict:
    """One size, in its own process: build, decide, deliver; RSS sampled as messages go out."""
    os.environ.setdefault("VALUEMAIL_SECRET", SECRET)
    from delivery.eligibility import decide_eligibility
    from delivery.send import deliver_period
    from valuemail.warehouse import connect

    home = pathlib.Path(workdir) / f"delivery-{n}"
    home.mkdir(parents=True, exist_ok=True)
    proc, port = _start_sink(home.parent, stock=sink == "stock")
    try:
        t = time.perf_counter()
        config, period = build_home(home, n, seed, port, html_kb=html_kb, images=images, connections=connections,
                                    batch_size=batch_size, build_processes=build_processes)
        build_s = time.perf_counter() - t
        rss_start = _rss_mb()
        samples: dict[int, float] = {}
        marks = sorted({m for m in (1_000, 10_000, 25_000, 49_000, 99_000) if m < n})

        def progress(message: str) -> None:
            sent = int(message.split(" ", 1)[0].replace(",", ""))
            for mark in marks:
                if sent >= mark and mark not in samples:
                    samples[mark] = round(_rss_mb(), 1)

        load_before = os.getloadavg()[0]
        with connect(config.warehouse_path) as con:
            t = time.perf_counter()
            summary = decide_eligibility(con, config, period)
            decide_s = time.perf_counter() - t
            import resource

            t = time.perf_counter()
            cpu0 = time.process_time()
            kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            report = deliver_period(con, config, period, progress=progress)
            deliver_s = time.perf_counter() - t
            cpu = time.process_time() - cpu0
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the builder processes (reaped); the sink is not yet
            builder_cpu = (kids.ru_utime + kids.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
            ledger = dict(con.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())
            from delivery.messages import MessageSource

            source = MessageSource(con, config, period)
            one = con.execute("SELECT customer_id, email, message_id FROM outbox WHERE status = 'sent' LIMIT 1").fetchone()
            message_bytes = len(source.build(source.load([one[0]])[one[0]], *one)) if one else 0
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    received = sink_cpu = None
    for line in out.splitlines():
        if line.startswith("received "):
            parts = line.split()
            received, sink_cpu = int(parts[1]), float(parts[3])
    shutil.rmtree(home, ignore_errors=True)
    return {
        "messages": n,
        "eligible": summary.send,
        "sent": report.sent,
        "received_by_sink": received,
        "ledger": ledger,
        "cancelled": sum(report.cancelled.values()),
        "failed": sum(report.failed.values()),
        "build_s": round(build_s, 2),
        "decide_s": round(decide_s, 3),
        "deliver_s": round(deliver_s, 3),
        "messages_per_s": round(report.sent / deliver_s, 1),
        "sender_cpu_s": round(cpu, 2),
        "builder_cpu_s": round(builder_cpu, 2),
        "sink_cpu_s": sink_cpu,
        "rss_before_mb": round(rss_start, 1),
        "rss_at_mb": {str(k): v for k, v in samples.items()},
        "sink": sink,
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "connections": connections,
        "batch_size": batch_size,
        "build_processes": build_processes,
        "message_kb": round(message_bytes / 1024, 1) if message_bytes else None,
    }


def run(workdir: pathlib.Path, customers: int, events: int, seed: int) -> dict:
    """Deliver 10k and 50k messages (``--set sizes=…``), each size in a fresh process."""
    from bench import options, run_isolated

    opts = options()
    sizes = [int(x) for x in str(opts.get("sizes", ",".join(map(str, DEFAULT_SIZES)))).split(",") if x.strip()]
    sink = str(opts.get("sink", "fast"))
    knobs = {k: int(opts[k]) for k in ("connections", "batch_size", "html_kb", "images", "build_processes") if k in opts}
    results = [run_isolated("bench.stage_delivery:measure",
                            {"workdir": str(workdir), "n": n, "seed": seed, "sink": sink, **knobs}) for n in sizes]
    big = results[-1]
    figures: dict = {
        "customers": big["messages"],
        "seconds": big["deliver_s"],
        "messages_per_s": big["messages_per_s"],
        "sent": big["sent"],
        "received_by_sink": big["received_by_sink"],
        "exactly_once": big["received_by_sink"] == big["sent"] == big["ledger"].get("sent"),
        "decide_s": big["decide_s"],
        "sender_cpu_per_msg_ms": round(big["sender_cpu_s"] / max(big["sent"], 1) * 1000, 3),
        "sink_cpu_per_msg_ms": round((big["sink_cpu_s"] or 0) / max(big["sent"], 1) * 1000, 3),
        "builder_cpu_per_msg_ms": round(big["builder_cpu_s"] / max(big["sent"], 1) * 1000, 3),
        # Other processes share the 2 cores: the 1-minute load average before / after the send.
        "load_avg_1m": big["load_avg_1m"],
        "sink": sink,
        "connections": big["connections"],
        "batch_size": big["batch_size"],
        "build_processes": big["build_processes"],
        "message_kb": big["message_kb"],
    }
    for r in results:
        figures[f"msgs_per_s_{r['messages']}"] = r["messages_per_s"]
        figures[f"peak_rss_mb_{r['messages']}"] = r["peak_rss_mb"]
        for mark, rss in r["rss_at_mb"].items():
            figures[f"rss_at_{mark}_of_{r['messages']}_mb"] = rss
    total_ms = figures["sender_cpu_per_msg_ms"] + figures["sink_cpu_per_msg_ms"] + figures["builder_cpu_per_msg_ms"]
    figures["total_cpu_per_msg_ms"] = round(total_ms, 3)
    # What 2 cores could carry at this CPU cost per message if nothing else ran (an upper bound).
    figures["cpu_capacity_2_cores_msgs_per_s"] = round(2000 / total_ms) if total_ms else None
    if len(results) > 1:
        figures["rss_growth_mb"] = round(results[-1]["peak_rss_mb"] - results[0]["peak_rss_mb"], 1)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("bench-out/delivery"))
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--sink", choices=["fast", "stock"], default="fast")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--connections", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--html-kb", type=int, default=28)
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--build-processes", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ["VALUEMAIL_BENCH_OPTIONS"] = json.dumps({
        "sizes": args.sizes, "sink": args.sink, "connections": args.connections, "batch_size": args.batch_size,
        "html_kb": args.html_kb, "images": args.images, "build_processes": args.build_processes})
    args.workdir.mkdir(parents=True, exist_ok=True)
    figures = run(args.workdir.resolve(), 0, 0, args.seed)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
