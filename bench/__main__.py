"""``python -m bench``: run benchmark stages in order, each in its own process, and print a table.

Examples::

    uv run python -m bench                                   # sample_data,ingest at 20k / 1M
    uv run python -m bench --stages ingest,metrics --workdir bench-out/mine
    uv run python -m bench --large --stages sample_data,ingest   # 1M customers / 50M events
    uv run python -m bench --stages ingest --set formats=parquet  # stage options
    uv run python -m bench --e2e --customers 20000               # the real jobs end to end (bench/e2e.py)
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from bench import UnknownStage, available_stages, child_main, format_table, run_benchmark

SMALL = (20_000, 1_000_000)
LARGE = (1_000_000, 50_000_000)
DEFAULT_STAGES = "sample_data,ingest"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", default=DEFAULT_STAGES,
                        help=f"comma-separated, run in this order (default {DEFAULT_STAGES}; "
                             f"available: {', '.join(available_stages())})")
    parser.add_argument("--customers", type=int, default=None, help=f"default {SMALL[0]:,} ({LARGE[0]:,} with --large)")
    parser.add_argument("--events", type=int, default=None, help=f"default {SMALL[1]:,} ({LARGE[1]:,} with --large)")
    parser.add_argument("--large", action="store_true", help="1M customers / 50M events (the target size)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=pathlib.Path, default=None,
                        help="shared work folder (default bench-out/<customers>c-<events>e)")
    parser.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="an option for the stages (e.g. formats=parquet,csv for ingest)")
    parser.add_argument("--e2e", action="store_true",
                        help="end to end: sample data, ingest, `valuemail run` weekly/monthly/yearly (bench/e2e.py)")
    parser.add_argument("--transport", choices=["smtp", "file"], default="smtp", help="--e2e: delivery to the SMTP sink or .eml files")
    parser.add_argument("--campaigns", default="weekly,monthly,yearly", help="--e2e: the jobs to run, in this order")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(json.load(sys.stdin))
    customers = args.customers or (LARGE if args.large else SMALL)[0]
    if args.e2e:
        from bench import e2e

        return e2e.main(args.workdir or pathlib.Path("bench-out") / f"e2e-{customers}c", customers, args.seed,
                        args.transport, args.campaigns.split(","), args.json)
    events = args.events if args.events is not None else (LARGE if args.large else SMALL)[1]
    workdir = args.workdir or pathlib.Path("bench-out") / f"{customers}c-{events}e"
    stage_options = {}
    for item in args.options:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"--set needs KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        stage_options[key.strip()] = value.strip()
    try:
        results = run_benchmark(args.stages.split(","), workdir.resolve(), customers, events, args.seed, stage_options)
    except UnknownStage as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(format_table(results, customers, events))
    if args.json:
        args.json.write_text(json.dumps({"customers": customers, "events": events, "seed": args.seed,
                                         "stages": [r.__dict__ for r in results]}, indent=2, default=str))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
