"""`partnersync status`: is it healthy? One screen."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from cli.common import connect_redis, to_json
from cli.table import render
from partnersync import config, redisurl
from partnersync.config import Settings


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from rq import Queue, Worker

    from partnersync import keys, workqueue

    connection = connect_redis(settings)
    queue = Queue(settings.queue, connection=connection)
    now = workqueue.now_ms()
    # per-status counts kept by the store on every transition (no scan of the entities)
    by_kind: Counter[tuple[str, str, str]] = Counter()
    for name, count in connection.hgetall(keys.ENTITY_COUNTS).items():
        if int(count) > 0:
            by_kind[tuple(name.decode().split(":", 2))] = int(count)
    last = {k.decode(): int(v) for k, v in connection.hgetall(keys.LAST_DELIVERY).items()}
    counters = {k.decode(): int(v) for k, v in connection.hgetall(keys.COUNTERS).items()}
    report = {
        "redis": redisurl.display(config.redis_url(settings)),
        "queue": {"name": settings.queue, "queued": queue.count,
                  "started": queue.started_job_registry.count, "failed": queue.failed_job_registry.count},
        "workers": len(Worker.all(connection=connection)),
        "drainers": connection.zcount(keys.DRAINERS, now, "+inf"),
        "due": connection.zcount(keys.DIRTY, "-inf", now),
        "dirty": connection.zcard(keys.DIRTY),
        "dlq": connection.zcard(keys.DLQ),
        "attention": [k.decode() for k in connection.zrange(keys.ATTENTION, 0, -1)],
        "clock": {k.decode(): (now - int(v)) / 1000 for k, v in connection.hgetall(keys.CLOCK).items()
                  if k.decode() != "undelivered-webhooks"},
        "lastDelivery": {k: (now - v) / 1000 for k, v in last.items()},
        "deliveries": counters,
        "entities": [{"partner": p, "kind": k, "status": s, "count": c}
                     for (p, k, s), c in sorted(by_kind.items())],
    }  # fmt: skip
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
