"""`partnersync bench`: partnersync measured against baselines run in the same run."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from partnersync.config import Settings


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.chaos:
        import subprocess

        env = dict(__import__("os").environ, CHAOS_SECONDS=str(args.seconds))
        return subprocess.call(
            [sys.executable, "-m", "pytest", "-m", "chaos", "-s", "-q", "tests/test_chaos.py"],
            env=env,
        )
    if args.scale is not None:
        from cli.bench import scale

        if args.scale < 1000:
            print("partnersync: bench --scale needs at least 1000 entities", file=sys.stderr)
            return 2
        return scale.main(args.scale, args.json)
    from cli.bench import run

    try:
        return run.main(quick=args.quick, as_json=args.json)
    except run.BenchError as exc:
        print(f"partnersync: bench: {exc}", file=sys.stderr)
        return 2


def add(sub: Any) -> None:
    bench = sub.add_parser("bench", help="measure against baselines run on this machine now")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--quick", action="store_true", help="a short run (figures are rougher)")
    bench.add_argument(
        "--chaos", action="store_true", help="run the chaos suite instead (from a checkout)"
    )
    bench.add_argument("--seconds", type=int, default=180, help="chaos duration")
    bench.add_argument(
        "--scale",
        type=int,
        metavar="N",
        help="the entity store at N synthetic entities instead (e.g. 1000000; memory, listing, "
        "find, retention)",
    )
    bench.set_defaults(func=cmd_bench)
