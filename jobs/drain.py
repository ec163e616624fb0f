"""The RQ job: reconcile due entities, a batch per claim, until none is due or the
time budget is spent (then hand over to a fresh job, so one job never runs unbounded)."""

from __future__ import annotations

import time

from rq import get_current_job

from partnersync import commands, context, keys, reconcile


def drain() -> dict[str, int]:
    ctx = context.current()
    job = get_current_job()
    me = job.id if job is not None else f"drain-inline-{time.monotonic_ns()}"
    totals = reconcile.BatchResult()
    deadline = time.monotonic() + ctx.settings.drain_budget_s
    while True:
        try:
            batch = step(ctx, me)
        except BaseException:
            # The claimed entities stay leased and due at lease expiry; free the slot so
            # the clock can start another drain job for them.
            ctx.workqueue.release(me)
            raise
        if batch is None:
            break  # CLAIM deregistered this drainer atomically
        if batch.applied:
            ctx.outbox.kick(ctx.settings.queue)  # its changes go to the endpoints
        totals.applied += batch.applied
        totals.unchanged += batch.unchanged
        totals.retried += batch.retried
        totals.dead += batch.dead
        if time.monotonic() >= deadline:
            ctx.workqueue.release(me)
            ctx.workqueue.kick()
            break
    return totals.counts()


def step(ctx: context.Context, me: str) -> reconcile.BatchResult | None:
    """One claim: its commands executed, its entities reconciled; None when nothing was
    due."""
    claimed_at = time.monotonic()  # before the claim: the leases run from no earlier
    claimed = ctx.workqueue.claim(me, ctx.settings.batch)
    if not claimed:
        return None
    commands_claimed = [k for k, _ in claimed if keys.split_entity_key(k)[1] == commands.COMMAND]
    entities = [(k, e) for k, e in claimed if keys.split_entity_key(k)[1] != commands.COMMAND]
    if commands_claimed:
        # a create must leave while the lease holds, with an HTTP timeout to spare
        s = ctx.settings
        deadline = claimed_at + s.lease_ms / 1000 - s.http_timeout_s
        ctx.run(commands.run_batch(ctx, me, commands_claimed, deadline))
    return ctx.run(reconcile.run_batch(ctx, me, entities))
