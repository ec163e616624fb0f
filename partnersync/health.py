"""What `partnersync status` and the console's system page show: one snapshot of the queue,
workers, backlog, clock tasks, deliveries and partner calls, read without a scan."""

from __future__ import annotations

from typing import Any

import redis

from partnersync import endpoints, keys, outbound, redisurl, replies, store, workqueue
from partnersync.config import Settings, redis_url

ATTENTION_SHOWN = 20


def snapshot(connection: redis.Redis, settings: Settings) -> dict[str, Any]:
    from rq import Queue, Worker

    queue = Queue(settings.queue, connection=connection)
    now = workqueue.now_ms()

    def ints(name: str) -> dict[str, int]:
        return {replies.text(k): int(v) for k, v in connection.hgetall(name).items()}

    last = ints(keys.LAST_DELIVERY)
    return {
        "at": now,
        "redis": redisurl.display(redis_url(settings)),
        "queue": {"name": settings.queue, "queued": queue.count,
                  "started": queue.started_job_registry.count, "failed": queue.failed_job_registry.count},
        "workers": len(Worker.all(connection=connection)),
        "drainers": connection.zcount(keys.DRAINERS, now, "+inf"),
        "due": connection.zcount(keys.DIRTY, "-inf", now),
        "dirty": connection.zcard(keys.DIRTY),
        "dlq": connection.zcard(keys.DLQ),
        # the newest few and how many: a snapshot stays a page however many there are
        "attention": replies.texts(connection.zrevrange(keys.ATTENTION, 0, ATTENTION_SHOWN - 1)),
        "attentionCount": connection.zcard(keys.ATTENTION),
        "clock": {k: (now - v) / 1000 for k, v in ints(keys.CLOCK).items()
                  if k != "undelivered-webhooks"},
        "lastDelivery": {k: (now - v) / 1000 for k, v in last.items()},
        "deliveries": ints(keys.COUNTERS),
        "partnerCalls": ints(keys.PARTNER_CALLS),  # "partner:status" -> calls so far
        "entities": [{"partner": p, "kind": k, "status": s, "count": c}
                     for (p, k, s), c in sorted(store.counts(connection).items()) if c > 0],
        "endpoints": _endpoints(connection),
    }  # fmt: skip


def _endpoints(connection: redis.Redis) -> list[dict[str, Any]]:
    """Each outbound endpoint: its state, entities waiting, dead letters, lag."""
    found = endpoints.listed(connection)
    state = outbound.Outbox(connection, lease_ms=0, attempts=0).state([e.id for e in found])
    out = []
    for e in found:
        s = state[e.id]
        out.append({"id": e.id, "state": outbound.condition(e, s), "waiting": s.waiting,
                    "deadLetters": s.dead, "lagSeconds": round(s.lag_s, 3)})  # fmt: skip
    return out
