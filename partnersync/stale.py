"""Stale entities: a watched entity whose re-check is due (store.next_check: its kind's
threshold after a change, then ever less often, not at all past PARTNERSYNC_WATCH_DAYS) is
re-fetched, whatever its partner, within PARTNERSYNC_RECHECK_BUDGET_PER_MIN per partner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from partnersync import keys, replies, workqueue

if TYPE_CHECKING:
    from partnersync.context import Context

SCAN = 1000  # due entries read per sweep


def stale_entities(ctx: Context) -> int:
    """Touch the watched entities whose re-check is due, within each partner's budget."""
    if not ctx.catalog.kinds:  # no partner runs here: nothing can be stale
        return 0
    connection = ctx.connection
    now = workqueue.redis_ms(connection)
    budget = max(1, int(ctx.settings.recheck_budget_per_min * ctx.settings.sweep_interval_s / 60))
    candidates = replies.texts(connection.zrangebyscore(keys.WATCH, "-inf", now, start=0, num=SCAN))
    due: list[str] = []
    later: dict[str, int] = {}
    taken: dict[str, int] = {}
    for key in candidates:
        partner, kind_name, _ = keys.split_entity_key(key)
        kind = ctx.catalog.kinds.get((partner, kind_name))
        if kind is None or not kind.fetched:
            connection.zrem(keys.WATCH, key)  # nothing to re-fetch from
        elif taken.get(partner, 0) < budget:
            taken[partner] = taken.get(partner, 0) + 1
            due.append(key)
            # looked at again after its threshold if this re-fetch never lands (its
            # reconcile sets the real next check)
            later[key] = now + int(kind.stale_after_s * 1000)
    if due:
        pipe = connection.pipeline(transaction=False)
        pipe.zadd(keys.WATCH, later)
        for partner, n in taken.items():
            pipe.hincrby(keys.RECHECKS, partner, n)
        pipe.execute()
        ctx.workqueue.touch(due)
    return len(due)
