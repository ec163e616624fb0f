"""User handlers for the end-to-end tests: record each call in Redis, fail on demand."""

from __future__ import annotations

import os

import redis

from partnersync.handlers import Handlers

handlers = Handlers()
CALLS = "test:handler-calls"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@handlers.on("tradevest", "transfer", "PROCESSED")
def processed(transition, record) -> None:
    if record.externalId and record.externalId.startswith("fail-handler"):
        raise RuntimeError("handler bug (planted by the test)")
    _redis().rpush(CALLS, f"{record.key}:{transition.from_}>{transition.to}")


ACTIVITY_CALLS = "test:handler-calls:saxo-activity"


@handlers.on("saxo", "activity")
def saxo_activity(transition, record) -> None:
    _redis().rpush(ACTIVITY_CALLS, f"{record.key}:{transition.to}")
