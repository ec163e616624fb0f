"""The clock process: periodic work that no event triggers.

- kick (every tick): start a drain job when entities are due — retries whose backoff ran
  out, entities whose lease a dead worker left behind — and none is live.
- deliver-kick (every tick): start a sender job when changes wait for an endpoint (a
  retry due, a sender killed mid-delivery) and none is queued or running.
- stale-entities (every PARTNERSYNC_SWEEP_INTERVAL_S): entities stuck in a non-terminal
  state are re-fetched.
- retention (same interval): final-state entities past PARTNERSYNC_RETENTION_DAYS leave,
  each leaving a tombstone.
- each partner's own tasks (its package's `tasks`): e.g. Tradevest's missed-webhook and
  transaction sweeps, Saxo's ENS poll and unsettled-amounts report.
Each task's last successful run is kept in Redis (`partnersync status` shows it).
"""

from __future__ import annotations

import logging
import signal
import time

from partnersync import context, keys, retention, stale, workqueue
from partnersync.config import Settings
from partnersync.partner import Task

log = logging.getLogger("partnersync.clock")


def tasks(ctx: context.Context) -> list[Task]:
    """(name, interval in seconds, run): the engine's, then each partner's."""
    s = ctx.settings
    engine: list[Task] = [
        ("kick", 0.0, ctx.workqueue.kick),
        ("deliver-kick", 0.0, lambda: ctx.outbox.kick(s.queue, check=True)),
        ("stale-entities", s.sweep_interval_s, lambda: stale.stale_entities(ctx)),
        (
            "retention",
            s.sweep_interval_s,
            lambda: retention.sweep(
                ctx.connection,
                ctx.catalog,
                s.retention_days,
                s.tombstone_days,
                s.command_retention_days,
                s.resting_days,
            ),  # fmt: skip
        ),
    ]
    return engine + [t for p in ctx.catalog.partners.values() for t in p.tasks(ctx)]


class Failures:
    """A task failing tick after tick (Redis down, a partner out) is logged when it starts
    failing and when it recovers, with the count: not once per tick."""

    def __init__(self) -> None:
        self.streaks: dict[str, int] = {}

    def failed(self, task: str, exc: Exception) -> None:
        streak = self.streaks.get(task, 0)
        if not streak:
            log.warning(
                "clock task failed; retrying every round, logged again when it recovers",
                extra={"task": task, "error": f"{type(exc).__name__}: {exc}"},
            )
        self.streaks[task] = streak + 1

    def succeeded(self, task: str) -> None:
        streak = self.streaks.pop(task, 0)
        if streak:
            log.warning("clock task recovered", extra={"task": task, "failedRounds": streak})


def run_clock(settings: Settings) -> int:
    ctx = context.Context(settings, context.connect(settings))
    schedule = tasks(ctx)
    last_run: dict[str, float] = {}
    failures = Failures()
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("clock started", extra={"interval_s": settings.clock_interval_s})
    while not stopping:
        for name, interval, run in schedule:
            if time.monotonic() - last_run.get(name, -1e9) < interval:
                continue
            last_run[name] = time.monotonic()
            try:
                result = run()
                ctx.connection.hset(keys.CLOCK, name, workqueue.now_ms())
                if result and name not in ("kick", "deliver-kick"):
                    log.info("sweep", extra={"task": name, "result": result})
            except Exception as exc:  # a partner or Redis hiccup: next round retries
                failures.failed(name, exc)
            else:
                failures.succeeded(name)
        deadline = time.monotonic() + settings.clock_interval_s
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.05)
    ctx.close()
    return 0
