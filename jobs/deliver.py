"""The RQ job: deliver the outbox's changes to the endpoints until idle or the time budget
is spent (then hand over to a fresh job when work remains)."""

from __future__ import annotations

import time

from rq import get_current_job

from partnersync import context
from partnersync.sender import Sender


def deliver() -> dict[str, int]:
    ctx = context.current()
    job = get_current_job()
    me = job.id if job is not None else f"deliver-inline-{time.monotonic_ns()}"
    sender = Sender(ctx.outbox, ctx.settings, me)
    totals = ctx.run(sender.run(ctx.settings.drain_budget_s))
    ctx.outbox.kick(ctx.settings.queue, check=True)
    return totals.as_dict()
