"""A partner's request budget, shared by every process: one bucket per documented
dimension (and per scope the partner counts it by), in Redis.

A partner declares its limits (`Limit`); before each request the client takes one request
from every bucket it counts against (lua/ratelimit.lua, GCRA: paced at the bucket's rate,
bursts up to its limit). No process sends beyond the budget: one that would, waits; a wait
longer than `MAX_WAIT_S` is handed back as a retry at that time instead of holding a
worker. A 429 naming a spent dimension pushes that bucket to the partner's reset, so every
process backs off, not only the one that was refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from partnersync import keys
from partnersync.errors import RateLimited

MAX_WAIT_S = 5.0  # a longer wait is a retry later, not a blocked worker
_LUA = Path(__file__).parent / "lua"
_CLOCK = (_LUA / "clock.lua").read_text()
TAKE = _CLOCK + (_LUA / "ratelimit.lua").read_text()
SPENT = _CLOCK + (_LUA / "ratelimit_spent.lua").read_text()


def whole(method: str, path: str) -> str:
    """One bucket for every request."""
    return ""


@dataclass(frozen=True)
class Limit:
    dimension: str  # the partner's own name for it (Saxo: Session, AppDay)
    requests: int
    per_s: float
    scope: Callable[[str, str], str | None] = whole  # (method, path) → bucket; None: not counted

    @property
    def interval_ms(self) -> int:
        return max(1, -(-int(self.per_s * 1000) // self.requests))  # rounded up: never faster

    @property
    def capacity_ms(self) -> int:
        """Bursts of one request fewer than the partner allows: arrivals jitter on the way,
        and the partner counts them as they arrive, not as they left."""
        return max(1, self.requests - 1) * self.interval_ms


class Limiter:
    """One partner's limits over one Redis."""

    def __init__(self, connection: redis.Redis, partner: str, limits: tuple[Limit, ...]):
        self.connection = connection
        self.partner = partner
        self.limits = limits
        self._take = connection.register_script(TAKE)
        self._spent = connection.register_script(SPENT)

    def _buckets(self, method: str, path: str) -> list[tuple[Limit, str]]:
        found = []
        for limit in self.limits:
            scope = limit.scope(method, path)
            if scope is not None:
                found.append((limit, keys.rate(self.partner, limit.dimension, scope)))
        return found

    def take(self, method: str, path: str) -> float:
        """0 when the request may go now (counted), else seconds to wait (not counted)."""
        buckets = self._buckets(method, path)
        if not buckets:
            return 0.0
        args: list[int] = []
        for limit, _ in buckets:
            args += [limit.interval_ms, limit.capacity_ms]
        wait_ms = self._take(keys=[key for _, key in buckets], args=args)
        return int(wait_ms) / 1000

    async def acquire(self, method: str, path: str) -> None:
        """Wait for a slot (the Redis call in a thread: the event loop keeps serving other
        requests); Retryable when the next slot is further than MAX_WAIT_S."""
        waited = False
        while True:
            wait = await asyncio.to_thread(self.take, method, path)
            if wait <= 0:
                if waited:
                    await asyncio.to_thread(self._count, "waited")
                return
            waited = True
            if wait > MAX_WAIT_S:
                raise RateLimited(
                    f"{self.partner} rate limit: next request in {wait:.1f} s", retry_after=wait
                )
            await asyncio.sleep(wait)

    def spent(self, method: str, path: str, dimension: str, reset_s: float) -> None:
        """The partner said `dimension` is spent until `reset_s` from now."""
        for limit, key in self._buckets(method, path):
            if limit.dimension.lower() == dimension.lower():
                args = [int(reset_s * 1000), limit.capacity_ms, limit.interval_ms]
                self._spent(keys=[key], args=args)
                self._count(f"spent:{limit.dimension}")

    def _count(self, what: str) -> None:
        self.connection.hincrby(keys.RATE_LIMITS, f"{self.partner}:{what}", 1)
