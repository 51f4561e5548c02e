"""Benchmark stage ``emails``: HTML + text rendering and complete MIME messages, per core.

Issue 4, item 8: HTML + text rendering ≥ 20,000 e-mails/s per core; complete MIME messages
≥ 5,000/s per core.  Printed, not asserted (a benchmark, not a test).

Data: synthetic :class:`~report_templates.model.EmailData` (``report_templates.samples.synthetic``:
all three languages, every variant, names in several scripts, charts as ``cid:`` images) — it
does not read other stages' output.  At most ``VALUEMAIL_BENCH_EMAILS`` (default 10,000)
customers per campaign are rendered.

Figures (per core = one process; ``*_per_cpu_s`` divides by the process's CPU time, so other
work on the machine doesn't count against it — the load average is printed too):

* ``render_per_cpu_s`` — :meth:`EmailRenderer.render` (EmailData → subject, preheader, HTML,
  text) for the weekly digest with every layout already compiled (best / median of ``repeats``
  passes); ``monthly_…`` / ``yearly_…`` the same for the other campaigns (a run renders one
  campaign and period); ``first_pass_per_cpu_s`` includes compiling each layout (MJML) on
  first use; ``shapes`` is how many layouts that was;
* ``reference_per_cpu_s`` — the naive way, Jinja with the real values then MJML per e-mail
  (:meth:`EmailRenderer.render_reference`), on a sample; ``render_speedup`` the ratio;
* ``mime_per_cpu_s`` — :class:`MimeSkeleton` building the complete message (headers, text
  quoted-printable, HTML and the inline chart PNGs base64) from rendered parts;
  ``email_message_per_cpu_s`` — the same message with ``email.message.EmailMessage``
  (``delivery.mime.build_message``) on a sample; ``mime_speedup`` the ratio;
* sizes: average / largest HTML and average message.

Standalone::

    uv run python -m bench.stage_emails [--customers 10000] [--seed 7] [--repeats 9]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import statistics
import time

NAME = "emails"

DEFAULT_CAP = 10_000
TARGET_RENDER = 20_000
TARGET_MIME = 5_000
CHART_PNG_BYTES = (12_000, 20_000)  # what charts/ produces for an e-mail chart (palette PNG, 1200×600)


def _cpu_rate(n: int, fn) -> tuple[float, float]:
    """(items per CPU-second, items per wall-second) of ``fn()`` processing ``n`` items."""
    c, w = time.process_time(), time.perf_counter()
    fn()
    cpu, wall = time.process_time() - c, time.perf_counter() - w
    return (round(n / cpu) if cpu > 0 else float("inf")), (round(n / wall) if wall > 0 else float("inf"))


def run(workdir: pathlib.Path, customers: int, events: int, seed: int, repeats: int = 9) -> dict:
    from delivery.mime import InlineImage, OutgoingEmail, build_message
    from report_templates import samples
    from report_templates.mime_skeleton import InlinePart, MimeSkeleton
    from report_templates.render import EmailRenderer

    load_before = round(os.getloadavg()[0], 2)
    n = max(1, min(customers, int(os.environ.get("VALUEMAIL_BENCH_EMAILS", DEFAULT_CAP))))
    renderer = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS)
    per_campaign: dict[str, dict] = {}
    rendered = []
    # A run renders one campaign and period (one partition), so each campaign is measured on its own.
    for campaign in ("weekly", "monthly", "yearly"):
        data = samples.synthetic(n, seed=seed, campaign=campaign)
        shapes_before = renderer.compiled_shapes
        # 1. first pass: every layout compiled (MJML) once, on first use
        first_cpu, _ = _cpu_rate(n, lambda: [renderer.render(d) for d in data])
        # 2. steady state: best / median of `repeats` passes
        cpu_rates, wall_rates = [], []
        for _ in range(repeats):
            c, w = _cpu_rate(n, lambda: [renderer.render(d) for d in data])
            cpu_rates.append(c)
            wall_rates.append(w)
        per_campaign[campaign] = {"first": first_cpu, "best": max(cpu_rates), "median": statistics.median(cpu_rates),
                                  "wall": max(wall_rates), "shapes": renderer.compiled_shapes - shapes_before}
        if campaign == "weekly":
            rendered = [renderer.render(d) for d in data]
            weekly_data = data
    data = weekly_data
    # 3. the naive way on a sample
    sample = data[: min(300, n)]
    reference_cpu, _ = _cpu_rate(len(sample), lambda: [renderer.render_reference(d) for d in sample])

    # 4. complete MIME messages from the rendered parts, chart-sized PNGs inline
    rng = random.Random(seed)
    pngs = {}
    for e in rendered:
        for img in e.images:
            if img.cid not in pngs:
                pngs[img.cid] = b"\x89PNG\r\n\x1a\n" + rng.randbytes(rng.randint(*CHART_PNG_BYTES))
    skeleton = MimeSkeleton(from_name="valuemail", from_address="hello@valuemail.example",
                            list_id="value-emails.valuemail.example")
    jobs = [(e, [InlinePart(img.cid, pngs[img.cid], f"{img.kind}.png") for img in e.images if img.cid])
            for e in rendered]
    names = ["Kovács Anna", "王芳", "Maria Garcia", "O'Brien, Pat"]

    def build_all():
        out = 0
        for i, (e, parts) in enumerate(jobs):
            out += len(skeleton.render(to_name=names[i % 4], to_address=f"customer{i}@example.com", subject=e.subject,
                                       text=e.text, html=e.html, images=parts,
                                       list_unsubscribe=f"https://valuemail.example/u/{i}"))
        return out

    mime_rates = []
    total_bytes = 0
    for _ in range(max(2, repeats // 2)):
        c, _w = _cpu_rate(n, lambda: mime_rates.append(build_all()))
        mime_rates[-1] = c
    total_bytes = build_all()
    small = jobs[: min(200, n)]

    def email_message_all():
        for i, (e, parts) in enumerate(small):
            build_message(OutgoingEmail(
                from_name="valuemail", from_address="hello@valuemail.example", to_name=names[i % 4],
                to_address=f"customer{i}@example.com", subject=e.subject, text=e.text, html=e.html,
                images=tuple(InlineImage(p.cid, p.data, p.filename) for p in parts),
                headers={"List-Unsubscribe": f"<https://valuemail.example/u/{i}>"})).as_bytes()

    email_message_cpu, _ = _cpu_rate(len(small), email_message_all)

    weekly = per_campaign["weekly"]
    best, mime_best = weekly["best"], max(mime_rates)
    html_sizes = [e.html_bytes for e in rendered]
    figures = {
        "emails": n,
        "customers": n,
        "seconds": round(n / weekly["wall"], 3),
        "render_per_cpu_s": best,
        "render_per_cpu_s_median": weekly["median"],
        "render_per_s_wall": weekly["wall"],
        "first_pass_per_cpu_s": weekly["first"],
        "shapes": weekly["shapes"],
    }
    for campaign in ("monthly", "yearly"):
        figures[f"{campaign}_render_per_cpu_s"] = per_campaign[campaign]["best"]
        figures[f"{campaign}_shapes"] = per_campaign[campaign]["shapes"]
    figures.update({
        "reference_per_cpu_s": reference_cpu,
        "render_speedup": round(best / reference_cpu, 1),
        "mime_per_cpu_s": mime_best,
        "mime_per_cpu_s_median": statistics.median(mime_rates),
        "email_message_per_cpu_s": email_message_cpu,
        "mime_speedup": round(mime_best / email_message_cpu, 1),
        "avg_html_bytes": round(sum(html_sizes) / n),
        "max_html_bytes": max(html_sizes),
        "avg_message_bytes": round(total_bytes / n),
        "target": f"render >= {TARGET_RENDER:,}/s and MIME >= {TARGET_MIME:,}/s per core",
        "meets_target": bool(min(best, per_campaign["monthly"]["best"], per_campaign["yearly"]["best"]) >= TARGET_RENDER
                             and mime_best >= TARGET_MIME),
        "load_average_before": load_before,
        "load_average_after": round(os.getloadavg()[0], 2),
    })
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=DEFAULT_CAP, help="e-mails per campaign")
    parser.add_argument("--events", type=int, default=0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("bench-out"))
    args = parser.parse_args(argv)
    figures = run(args.workdir, args.customers, args.events, args.seed, repeats=args.repeats)
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:,}" if isinstance(value, int) and not isinstance(value, bool) else f"{key:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
