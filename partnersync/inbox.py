"""The inbox record: one raw delivery as it arrived, kept `PARTNERSYNC_INBOX_TTL` seconds.

A Redis hash at keys.inbox(delivery id). Written by the intake script (lua/intake.lua,
with these field names) and by a DLQ replay (`write`); read by reconcile (`read`, then
`Record.of`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from partnersync import keys

# the hash's fields: type, body, receivedAt, entities (space-separated entity keys);
# reconcile reads the first three
READ = ("type", "body", "receivedAt")


@dataclass(frozen=True)
class Record:
    type: str | None  # the event type (Tradevest's notification name, ENS_<ActivityType>)
    body: bytes | None  # the body as delivered
    received_ms: int | None  # Redis's clock at intake
    entities: tuple[str, ...] = ()  # the entity keys it names

    @classmethod
    def of(cls, values: list[Any]) -> Record:
        """From the HMGET of `read`."""
        type_, body, received = values
        return cls(type_.decode() if type_ else None, body, int(received) if received else None)


def read(pipe: redis.client.Pipeline, delivery_id: str) -> None:
    """Queue the HMGET of a delivery's record on `pipe` (its reply: `Record.of`)."""
    pipe.hmget(keys.inbox(delivery_id), list(READ))


def write(pipe: redis.client.Pipeline, delivery_id: str, record: Record, ttl: int) -> None:
    """Queue the record's (re)write on `pipe`, expiring after `ttl` seconds."""
    pipe.hset(
        keys.inbox(delivery_id),
        mapping={
            "type": record.type or "",
            "body": record.body or b"",
            "receivedAt": record.received_ms or 0,
            "entities": " ".join(record.entities),
        },
    )
    pipe.expire(keys.inbox(delivery_id), ttl)
