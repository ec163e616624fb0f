"""`partnersync status`: is it healthy? One screen."""

from __future__ import annotations

import argparse
from typing import Any

from cli.common import connect_redis, to_json
from cli.table import render
from partnersync.config import Settings


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import health

    report = health.snapshot(connect_redis(settings), settings)
    if args.json:
        print(to_json(report))
        return 0
    q = report["queue"]
    print(f"redis     {report['redis']}")
    print(
        f"queue     {q['name']}: {q['queued']} queued, {q['started']} started, {q['failed']} failed"
    )
    print(f"workers   {report['workers']} (drain jobs live: {report['drainers']})")
    print(f"backlog   {report['due']} entities due, {report['dirty']} pending in all")
    print(f"dlq       {report['dlq']} dead letters")
    for key in report["attention"]:
        print(f"attention {key} (final state needs a human)")
    more = report["attentionCount"] - len(report["attention"])
    if more > 0:
        print(f"attention … and {more} more (the console's overview lists them)")
    for e in report["endpoints"]:
        print(f"endpoint  {e['id']}: {e['state']}, {e['waiting']} entities waiting, "
              f"{e['deadLetters']} dead letters, lag {e['lagSeconds']:.1f}s")  # fmt: skip
    rows: list[tuple[str, str, str, str]] = []
    rows += [
        ("clock", task, "", f"last ran {age:.0f}s ago")
        for task, age in sorted(report["clock"].items())
    ]
    rows += [
        ("delivery", event, "", f"last {age:.0f}s ago")
        for event, age in sorted(report["lastDelivery"].items())
    ]
    rows += [("entities", f"{e['partner']}:{e['kind']}", e["status"], str(e["count"])) for e in report["entities"]]  # fmt: skip
    if rows:
        print()
        render(["", "NAME", "STATUS", ""], rows)
    return 0


def add(sub: Any) -> None:
    status = sub.add_parser("status", help="is it healthy? one screen")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
