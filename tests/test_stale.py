"""Re-fetching unchanged entities follows recent change, not the store's size (#38): ever
less often the longer an entity has not changed, not at all past PARTNERSYNC_WATCH_DAYS,
and within a per-partner budget per minute, counted in /metrics."""

from __future__ import annotations

import redis

from cli.redisserver import RedisServer
from partnersync import config, context, keys, stale, store, workqueue
from tests.conftest import base_env

MIN = 60_000
DAY = 86_400_000


def test_unchanged_entities_are_rechecked_ever_less_often_then_not_at_all() -> None:
    now = 1_000 * DAY
    assert store.next_check(now, now, 300, 30) == now + 5 * MIN  # just changed: the threshold
    assert store.next_check(now, now - 4 * MIN, 300, 30) == now + 5 * MIN
    assert store.next_check(now, now - 60 * MIN, 300, 30) == now + 30 * MIN
    assert store.next_check(now, now - 10 * DAY, 300, 30) == now + 5 * DAY
    assert store.next_check(now, now - 31 * DAY, 300, 30) is None  # steady: left to webhooks
    # from a change to the end of the watch, a handful of re-fetches, not one every 5 min
    checks, clock, changed = 0, 1_000 * DAY, 1_000 * DAY
    while (due := store.next_check(clock, changed, 300, 30)) is not None:
        checks, clock = checks + 1, due
    assert checks <= 25  # (a check every 5 minutes would be 8,640)


def test_the_stale_sweep_keeps_each_partners_budget(
    redis_server: RedisServer, r: redis.Redis
) -> None:
    env = base_env(redis_server.url, PARTNERSYNC_RECHECK_BUDGET_PER_MIN="20",
                   PARTNERSYNC_SWEEP_INTERVAL_S="30")  # fmt: skip
    ctx = context.Context(config.load(env, state_fallback=False), r)
    try:
        now = workqueue.redis_ms(r)
        tradevest = [f"tradevest:transfer:t-{n:02d}" for n in range(30)]
        saxo = [f"saxo:cash-transfer:c-{n}" for n in range(5)]
        r.zadd(keys.WATCH, {k: now - 1000 - n for n, k in enumerate(tradevest + saxo)})
        r.zadd(keys.WATCH, {"tradevest:transfer:later": now + 60_000})  # not due yet
        assert (
            stale.stale_entities(ctx) == 15
        )  # 10 a sweep for Tradevest (20/min, every 30 s), 5 Saxo
        assert {k.decode(): int(v) for k, v in r.hgetall(keys.RECHECKS).items()} == {
            "tradevest": 10, "saxo": 5,
        }  # fmt: skip
        due = {m.decode() for m in r.zrangebyscore(keys.WATCH, "-inf", now)}
        assert len(due & set(tradevest)) == 20 and not due & set(saxo)  # the rest next sweep
        touched = {m.decode() for m in r.zrange(keys.DIRTY, 0, -1)}
        assert len(touched) == 15 and "tradevest:transfer:later" not in touched
        assert stale.stale_entities(ctx) == 10  # the next sweep takes the next 10
    finally:
        ctx.close()
