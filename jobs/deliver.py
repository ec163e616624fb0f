"""The RQ job: deliver the outbox's changes to the endpoints until idle or the time budget
is spent (then hand over to a fresh job when work remains)."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

from rq import get_current_job

from partnersync import context
from partnersync.sender import Sender


def deliver() -> dict[str, int]:
    ctx = context.current()
    job = get_current_job()
    me = job.id if job is not None else f"deliver-inline-{time.monotonic_ns()}"
    sender = Sender(ctx.outbox, ctx.settings, me)
    restore = _stop_on_sigterm(sender)
    try:
        totals = ctx.run(sender.run(ctx.settings.drain_budget_s))
    finally:
        restore()
    ctx.outbox.kick(ctx.settings.queue, check=True)
    return totals.as_dict()


def _stop_on_sigterm(sender: Sender) -> Any:
    """A sender may run for minutes: the worker's SIGTERM (the pool stopping) makes it hand
    over at once, then RQ's own handler runs as before. Returns what restores RQ's."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)

    def stop(signum: int, frame: Any) -> None:
        sender.stopping = True
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, stop)
    return lambda: signal.signal(signal.SIGTERM, previous)
