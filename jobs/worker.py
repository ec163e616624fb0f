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

from partnersync import context, failpoints, handlers, redisurl
from partnersync.config import Settings
from partnersync.deathsig import die_with_parent

log = logging.getLogger("partnersync.worker")


def _exit_reason(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return "exited cleanly" if rc == 0 else f"exited with status {rc}"


PUBSUB_POLL_S = 1.0


class Worker(SimpleWorker):
    """RQ's SimpleWorker whose command thread (RQ's pubsub: stop/kill requests) notices a
    stop within PUBSUB_POLL_S. RQ runs it with sleep_time=60 and counts on the UNSUBSCRIBE
    reply to wake it; when the thread reads that reply before teardown calls stop(), it
    waits up to 60 s for a subscription that never comes, and redis-py's stop() joins it
    without a timeout: a SIGTERMed worker hung past the pool's grace and was killed."""

    def subscribe(self) -> None:
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=PUBSUB_POLL_S, daemon=True, exception_handler=self._pubsub_exception_handler
        )

    def unsubscribe(self) -> None:
        """RQ's, but its stop() joins the thread without a timeout: a thread stuck in a
        wait (under the chaos run's libfaketime a timed wait never returns) held the
        SIGTERMed worker forever. A daemon thread left behind ends with the process."""
        if self.pubsub_thread:
            self.pubsub.unsubscribe()
            self.pubsub_thread.stop(timeout=PUBSUB_POLL_S * 2)
            self.pubsub.close()


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> bool:
    failpoints.from_environ()  # tests only: PARTNERSYNC_FAILPOINTS=name=stop
    failpoints.hit("worker.start")
    connection = context.connect(settings)
    redisurl.wait_until_reachable(connection, log)  # not a crash loop while Redis is away
    ctx = context.Context(settings, connection, handlers.load(settings.handlers))
    context.install(ctx)
    queue = Queue(settings.queue, connection=connection, serializer=JSONSerializer)
    worker = Worker(
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


class Backoff:
    """Restart delays of one slot: exponential from `first` to `cap`, reset once a worker
    has stayed up for `healthy` seconds (a crash loop, e.g. Redis down, backs off; a rare
    crash restarts at once). A worker killed by a signal (an operator, the OOM killer) is
    restarted at once: it did not fail by itself, and what it was working on is bounded by
    the crash budget (PARTNERSYNC_MAX_CRASHES), not by slowing the pool."""

    def __init__(self, first: float = 0.5, cap: float = 60.0, healthy: float = 60.0):
        self.first, self.cap, self.healthy = first, cap, healthy
        self.failures = 0

    def next_delay(self, uptime: float, killed: bool = False) -> float:
        if killed:
            return 0.0
        if uptime >= self.healthy:
            self.failures = 0
        delay = 0.0 if self.failures == 0 else min(self.cap, self.first * 2 ** (self.failures - 1))
        self.failures += 1
        return delay


def run_pool(settings: Settings, n: int, *, grace_s: float = 30.0) -> int:
    """Run `n` worker processes; restart any that dies (with backoff) until SIGTERM/SIGINT."""
    command = [sys.executable, "-m", "partnersync", "worker", "--single"]
    children: dict[int, subprocess.Popen[bytes]] = {}
    started: dict[int, float] = {}
    restart_at: dict[int, float] = {}
    backoff = {slot: Backoff() for slot in range(n)}
    stopping = False

    def spawn(slot: int) -> None:
        env = dict(os.environ, PARTNERSYNC_WORKER_SLOT=str(slot))
        # not a process group of its own: Ctrl-C on the pool reaches its workers as well
        # (RQ ignores the pool's SIGTERM that follows within 1 s)
        children[slot] = subprocess.Popen(command, env=env, preexec_fn=die_with_parent)
        started[slot] = time.monotonic()

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(n):
        spawn(slot)
    log.info("worker pool started", extra={"workers": n})
    while not stopping:
        now = time.monotonic()
        for slot, proc in list(children.items()):
            if stopping or proc.poll() is None:
                continue
            if slot not in restart_at:
                delay = backoff[slot].next_delay(now - started[slot], proc.returncode < 0)
                restart_at[slot] = now + delay
                log.warning(
                    "worker exited, restarting",
                    extra={
                        "slot": slot,
                        "rc": proc.returncode,
                        "reason": _exit_reason(proc.returncode),
                        "restartInS": round(delay, 1),
                        "failuresInARow": backoff[slot].failures,
                    },
                )
            if now >= restart_at[slot]:
                del restart_at[slot]
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
