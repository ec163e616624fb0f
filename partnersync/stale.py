"""Stale entities: a non-terminal entity unchanged for longer than its kind's threshold
(e.g. a transfer RECEIVED for 2 minutes) is re-fetched, whatever its partner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from partnersync import keys, replies, workqueue

if TYPE_CHECKING:
    from partnersync.context import Context


def stale_entities(ctx: Context) -> int:
    """Touch watched entities unchanged for longer than their kind's threshold."""
    if not ctx.catalog.kinds:  # no partner runs here: nothing can be stale
        return 0
    now = workqueue.redis_ms(ctx.connection)
    shortest = min(k.stale_after_s for k in ctx.catalog.kinds.values())
    candidates = ctx.connection.zrangebyscore(
        keys.WATCH, "-inf", now - int(shortest * 1000), start=0, num=1000, withscores=True
    )
    due: list[str] = []
    pairs: list[tuple[bytes, float]] = candidates  # type: ignore[assignment]  # withscores
    for member, score in pairs:
        key = replies.text(member)
        partner, kind_name, _ = keys.split_entity_key(key)
        kind = ctx.catalog.kinds.get((partner, kind_name))
        if kind is None or not kind.fetched:
            ctx.connection.zrem(keys.WATCH, key)  # nothing to re-fetch from
        elif now - score >= kind.stale_after_s * 1000:
            due.append(key)
    if due:
        # re-check later: the next reconcile refreshes the score
        ctx.connection.zadd(keys.WATCH, {k: now for k in due})
        ctx.workqueue.touch(due)
    return len(due)
