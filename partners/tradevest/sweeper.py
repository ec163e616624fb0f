"""Transactions have no webhook: the transactions of known customers are listed and the
new or changed ones reconciled (missed notifications: recovery.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import redis

from partners.tradevest import keys as tradevest_keys
from partnersync import keys, replies, store, workqueue
from partnersync.context import Context
from schemas.tradevest.events import PARTNER

log = logging.getLogger("partnersync.sweeper")

_item = msgspec.json.Decoder(dict[str, Any])


def customers_due(
    connection: redis.Redis, now_ms: int, window_days: int, interval_s: float, budget: int
) -> list[str]:
    """The customers whose transactions this sweep lists, at most `budget` (one listing
    each, so partner calls follow the budget, not the number of customers): those with an
    entity change within the window, most recent first (live work), and a slice of the
    dormant ones, sized so the whole rotation takes half the window if the budget allows
    (an incoming payment to a dormant customer, which no webhook announces, is found
    within it), with a tenth of the budget kept for it."""
    window_ms = window_days * 86_400_000
    dormant = connection.zcount(tradevest_keys.ACTIVITY, "-inf", f"({now_ms - window_ms}")
    reserved = max(1, budget // 10) if dormant else 0
    active = replies.texts(
        connection.zrange(
            tradevest_keys.ACTIVITY,
            "+inf",
            now_ms - window_ms,
            desc=True,
            byscore=True,
            offset=0,
            num=budget - reserved,
        )  # fmt: skip
    )
    if not dormant:
        return active
    rotations = max(1, int(window_ms / 2 / 1000 / max(interval_s, 0.001)))
    size = min(max(50, -(-dormant // rotations)), budget - len(active))
    start = int(connection.get(tradevest_keys.ROTATION) or 0)
    if start >= dormant:
        start = 0
    # ranks 0..dormant-1 are the dormant customers (ordered by last activity, oldest first)
    piece = replies.texts(
        connection.zrange(tradevest_keys.ACTIVITY, start, min(start + size, dormant) - 1)
    )
    connection.set(tradevest_keys.ROTATION, start + size if start + size < dormant else 0)
    return list(dict.fromkeys(active + piece))


async def transactions(ctx: Context, window_days: int = 2) -> int:
    """Reconcile the transactions booked in the last `window_days` of the customers due
    (`customers_due`): at most PARTNERSYNC_RECHECK_BUDGET_PER_MIN customers' listings a
    minute (the stale sweep's re-fetches have as many of their own)."""
    client = ctx.clients["tradevest"]
    s = ctx.settings
    budget = max(1, int(s.recheck_budget_per_min * s.sweep_interval_s / 60))
    customers = customers_due(
        ctx.connection, workqueue.redis_ms(ctx.connection), window_days, s.sweep_interval_s,
        budget,
    )  # fmt: skip
    start = (datetime.now(UTC) - timedelta(days=window_days)).date().isoformat()
    due: list[str] = []
    for customer in customers:
        async for raw in client.pages(
            f"/customers/{customer}/transactions", startBookingDate=start
        ):
            item = _item.decode(raw)
            key = keys.entity_key(PARTNER, "transaction", str(item.get("transactionId")))
            stored = store.load(ctx.connection, [key])[0]
            modified = item.get("modifiedOn")
            newer = isinstance(modified, str) and (
                stored is None
                or stored.modifiedOn is None
                or stored.modifiedOn < datetime.fromisoformat(modified)
            )
            if stored is None or newer:
                due.append(key)
    if due:
        ctx.workqueue.touch(due)
    return len(due)
