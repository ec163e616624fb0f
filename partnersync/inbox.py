"""The inbox: every raw delivery as it arrived, kept `PARTNERSYNC_INBOX_TTL` seconds.

Two layouts, both read:

- **Blocks** (written by the intake script, lua/intake.lua): the deliveries of one intake
  batch share a value, `keys.inbox_block(block)`, a msgpack array
  `[receivedAt, offset, record, offset, record, ...]` where each record is `encode`'s
  `[type, entities, body]`. A delivery id `{ms:013d}-{seq}` names its block
  (`seq // BLOCK`) and its offset in it (`seq % BLOCK`). One value per batch instead of a
  key per delivery: a new key costs Redis several µs of CPU and ~100 bytes.
- **One record** (`keys.inbox(delivery id)`, a hash of type, body, receivedAt, entities):
  a DLQ replay's rewrite of a delivery (`write`). Read
  first: a replayed delivery's rewrite is newer than its block.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import redis

from partnersync import keys

BLOCK = 1024  # delivery ids per block (lua/intake.lua's BLOCK)

# the one-record hash's fields: type, body, receivedAt, entities (space-separated keys)
FIELDS = ("type", "body", "receivedAt", "entities")


@dataclass(frozen=True)
class Record:
    type: str | None  # the event type (Tradevest's notification name, ENS_<ActivityType>)
    body: bytes | None  # the body as delivered
    received_ms: int | None  # Redis's clock at intake
    entities: tuple[str, ...] = ()  # the entity keys it names


MISSING = Record(None, None, None)

_encoder = msgspec.msgpack.Encoder()
_block = msgspec.msgpack.Decoder(list[Any])


def encode(event_type: str, entities: Sequence[str], body: bytes) -> bytes:
    """A delivery's record as the intake script stores it in its block."""
    return _encoder.encode((event_type, " ".join(entities), body))


def block_of(delivery_id: str) -> tuple[int, int] | None:
    """(block, offset) of a delivery id, None for what is not one."""
    _, _, seq = delivery_id.rpartition("-")
    if not seq.isdigit():
        return None
    return divmod(int(seq), BLOCK)


def _blocks(delivery_ids: Iterable[str]) -> list[int]:
    """The distinct blocks these ids name, in first-seen order (queue_read's GETs)."""
    return list(dict.fromkeys(b[0] for d in delivery_ids if (b := block_of(d)) is not None))


def queue_read(pipe: redis.client.Pipeline, delivery_ids: Sequence[str]) -> int:
    """Queue on `pipe` what `records` needs for these ids; returns how many replies."""
    for delivery_id in delivery_ids:
        pipe.hmget(keys.inbox(delivery_id), list(FIELDS))
    blocks = _blocks(delivery_ids)
    for block in blocks:
        pipe.get(keys.inbox_block(block))
    return len(delivery_ids) + len(blocks)


def records(delivery_ids: Sequence[str], replies: Sequence[Any]) -> list[Record]:
    """The records of `delivery_ids` from the replies `queue_read` queued (MISSING for a
    delivery no longer held)."""
    singles = replies[: len(delivery_ids)]
    decoded = {
        block: _decode_block(value) if value is not None else {}
        for block, value in zip(_blocks(delivery_ids), replies[len(delivery_ids) :], strict=True)
    }
    out = []
    for delivery_id, single in zip(delivery_ids, singles, strict=True):
        type_, body, received, entities = single
        if type_ is not None:
            out.append(
                Record(
                    type_.decode() or None, body, int(received) if received else None,
                    tuple((entities or b"").decode().split()),
                )
            )  # fmt: skip
            continue
        found = block_of(delivery_id)
        out.append(decoded.get(found[0], {}).get(found[1], MISSING) if found else MISSING)
    return out


def read(connection: redis.Redis, delivery_ids: Sequence[str]) -> list[Record]:
    """The records of these deliveries, in one round trip."""
    pipe = connection.pipeline(transaction=False)
    queue_read(pipe, delivery_ids)
    return records(delivery_ids, pipe.execute())


def _decode_block(value: bytes) -> dict[int, Record]:
    items = _block.decode(value)
    received = int(items[0])
    out = {}
    for i in range(1, len(items) - 1, 2):
        type_, entities, body = items[i + 1]
        out[int(items[i])] = Record(type_, bytes(body), received, tuple(entities.split()))
    return out


def scan(connection: redis.Redis) -> Iterator[tuple[str, Record]]:
    """Every (delivery id, record) the inbox holds, in no order (a scan: for tests, the
    bench and an operator's check, not for a request path)."""
    for key in connection.scan_iter(keys.inbox("*"), count=10_000):
        delivery_id = key.decode().removeprefix(keys.inbox(""))
        found = read(connection, [delivery_id])[0]
        if found is not MISSING:
            yield delivery_id, found
    for key in connection.scan_iter(keys.inbox_block("*"), count=10_000):
        block = int(key.decode().removeprefix(keys.inbox_block("")))
        value = connection.get(key)
        if isinstance(value, bytes):
            for offset, record in _decode_block(value).items():
                yield f"{record.received_ms:013d}-{block * BLOCK + offset}", record


def count(connection: redis.Redis) -> int:
    """Deliveries the inbox holds (a scan, as `scan`)."""
    return sum(1 for _ in scan(connection))


def write(pipe: redis.client.Pipeline, delivery_id: str, record: Record, ttl: int) -> None:
    """Queue the one-record (re)write of a delivery on `pipe`, expiring after `ttl` s."""
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
