"""The RQ job: reconcile due entities, a batch per claim, until none is due or the
time budget is spent (then hand over to a fresh job, so one job never runs unbounded)."""

from __future__ import annotations

import time

from rq import get_current_job

from jobs import commands, context, reconcile
from partnersync import keys


def drain() -> dict[str, int]:
    ctx = context.current()
    job = get_current_job()
    me = job.id if job is not None else f"drain-inline-{time.monotonic_ns()}"
    totals = reconcile.BatchResult()
    deadline = time.monotonic() + ctx.settings.drain_budget_s
    while True:
        claimed = ctx.workqueue.claim(me, ctx.settings.batch)
        if not claimed:
            break  # CLAIM deregistered this drainer atomically
        commands_claimed = [
            k for k, _ in claimed if keys.split_entity_key(k)[1] == commands.COMMAND
        ]
        entities = [(k, e) for k, e in claimed if keys.split_entity_key(k)[1] != commands.COMMAND]
        try:
            if commands_claimed:
                ctx.run(commands.run_batch(ctx, me, commands_claimed))
            batch = ctx.run(reconcile.run_batch(ctx, me, entities))
        except BaseException:
            # The claimed entities stay leased and due at lease expiry; free the slot so
            # the clock can start another drain job for them.
            ctx.workqueue.release(me)
            raise
        totals.applied += batch.applied
        totals.unchanged += batch.unchanged
        totals.retried += batch.retried
        totals.dead += batch.dead
        if time.monotonic() >= deadline:
            ctx.workqueue.release(me)
            ctx.workqueue.kick()
            break
    return totals.counts()
