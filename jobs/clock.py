"""The clock process: periodic work that no event triggers.

- kick: start a drain job when entities are due (retries whose backoff ran out, entities
  whose lease a dead worker left behind) and no drain job is live.
"""

from __future__ import annotations

import logging
import signal
import time

from jobs import context
from partnersync import workqueue
from partnersync.config import Settings

log = logging.getLogger("partnersync.clock")


def tick(wq: workqueue.WorkQueue) -> None:
    started = wq.kick()
    if started:
        log.debug("clock started a drain job", extra={"job": started})


def run_clock(settings: Settings) -> int:
    connection = context.connect(settings)
    wq = workqueue.WorkQueue(
        connection, queue=settings.queue, drainers=settings.drainers, lease_ms=settings.lease_ms
    )
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("clock started", extra={"interval_s": settings.clock_interval_s})
    while not stopping:
        try:
            tick(wq)
        except Exception as exc:  # Redis restarting: try again next tick
            log.warning("clock tick failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        deadline = time.monotonic() + settings.clock_interval_s
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.05)
    return 0
