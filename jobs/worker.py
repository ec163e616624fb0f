"""RQ workers, and the pool that supervises them.

Each worker is an RQ SimpleWorker (jobs run in-process: no fork per job, and the keep-alive
HTTP clients survive between jobs) on one queue (RQ then uses BLMOVE, which cannot lose a
job between pop and the started registry). The pool is a thin supervisor of our own rather
than `rq worker-pool`: it restarts a crashed child, and on SIGTERM gives the children a
grace period to finish their jobs, then kills them (worker-pool waits forever).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from jobs import context
from partnersync import handlers
from partnersync.config import Settings

log = logging.getLogger("partnersync.worker")


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> bool:
    connection = context.connect(settings)
    ctx = context.Context(settings, connection, handlers.load(settings.handlers))
    context.install(ctx)
    queue = Queue(settings.queue, connection=connection, serializer=JSONSerializer)
    worker = SimpleWorker(
        [queue],
        connection=connection,
        serializer=JSONSerializer,
        name=name,
        default_result_ttl=60,
        worker_ttl=60,
    )
    try:
        return worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
    finally:
        context.install(None)
        ctx.close()


def run_pool(settings: Settings, n: int, *, grace_s: float = 30.0) -> int:
    """Run `n` worker processes; restart any that dies until SIGTERM/SIGINT."""
    command = [sys.executable, "-m", "partnersync", "worker", "--single"]
    children: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False

    def spawn(slot: int) -> None:
        env = dict(os.environ, PARTNERSYNC_WORKER_SLOT=str(slot))
        children[slot] = subprocess.Popen(command, env=env)

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(n):
        spawn(slot)
    log.info("worker pool started", extra={"workers": n})
    while not stopping:
        for slot, proc in list(children.items()):
            if proc.poll() is not None and not stopping:
                log.warning(
                    "worker exited, restarting", extra={"slot": slot, "rc": proc.returncode}
                )
                spawn(slot)
        time.sleep(0.2)
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # RQ's warm shutdown: finish the current job
    deadline = time.monotonic() + grace_s
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return 0
