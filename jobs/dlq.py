"""The dead-letter queue: events that could not be applied, with the reason, kept for
`PARTNERSYNC_DLQ_RETENTION` seconds. Replay puts them back through reconciliation."""

from __future__ import annotations

from datetime import datetime

import msgspec
import redis

from partnersync import keys
from schemas.store import Transition


class DeadEvent(msgspec.Struct, kw_only=True):
    deliveryId: str
    type: str | None = None
    body: str | None = None  # the raw delivery (the inbox copy expires before the DLQ's)


class DeadLetter(msgspec.Struct, kw_only=True):
    id: str
    at: datetime
    reason: str  # "reconcile" (events not applied) or "handler" (a user handler failed)
    entity: str
    error: str
    traceback: str
    attempts: int
    events: list[DeadEvent] = []
    transition: Transition | None = None


_decoder = msgspec.json.Decoder(DeadLetter)


def add(pipe: redis.client.Pipeline, letter: DeadLetter, retention: int) -> None:
    pipe.set(keys.dead_letter(letter.id), msgspec.json.encode(letter), ex=retention)
    pipe.zadd(keys.DLQ, {letter.id: int(letter.at.timestamp() * 1000)})


def get(connection: redis.Redis, dlq_id: str) -> DeadLetter | None:
    raw = connection.get(keys.dead_letter(dlq_id))
    return None if raw is None else _decoder.decode(raw)


def ids(connection: redis.Redis) -> list[str]:
    return [i.decode() for i in connection.zrange(keys.DLQ, 0, -1)]


def all_letters(connection: redis.Redis) -> list[DeadLetter]:
    """Every live letter; ids whose letter expired are pruned from the index."""
    out: list[DeadLetter] = []
    expired: list[str] = []
    for dlq_id in ids(connection):
        letter = get(connection, dlq_id)
        (out.append(letter) if letter else expired.append(dlq_id))
    if expired:
        connection.zrem(keys.DLQ, *expired)
    return out


def remove(connection: redis.Redis, dlq_id: str) -> None:
    pipe = connection.pipeline()
    pipe.delete(keys.dead_letter(dlq_id))
    pipe.zrem(keys.DLQ, dlq_id)
    pipe.execute()
