"""The inbox: every raw delivery as it arrived, kept `PARTNERSYNC_INBOX_TTL` seconds.

Two layouts, both read:

- **Blocks** (written by the intake script, lua/intake.lua): the deliveries of one intake
  batch share a value, `keys.inbox_block(block)`, a msgpack array
  `[receivedAt, offset, record, offset, record, ...]` where each record is `encode`'s
  `[type, entities, body, headers]` (older blocks: no headers). A delivery id `{ms:013d}-{seq}` names its block
  (`seq // BLOCK`) and its offset in it (`seq % BLOCK`). One value per batch instead of a
  key per delivery: a new key costs Redis several µs of CPU and ~100 bytes.
- **One record** (`keys.inbox(delivery id)`, a hash of type, body, receivedAt, entities):
  a DLQ replay's rewrite of a delivery (`write`). Read
  first: a replayed delivery's rewrite is newer than its block (whose headers it keeps).

A partner's resends of a delivery (answered as duplicates) are kept beside it:
`keys.resends(delivery id)`, a list of msgpack `[receivedAt, headers]`, the latest
`RESENDS_KEPT`, expiring with the inbox.

Headers are kept as the request had them, at most `MAX_HEADERS` of at most
`MAX_HEADER_VALUE` characters, except credentials: their names are kept, their values
replaced by `REDACTED` (`kept_headers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import redis

from partnersync import keys

BLOCK = 1024  # delivery ids per block (lua/intake.lua's BLOCK)
RESENDS_KEPT = 20  # lua/intake.lua keeps the latest this many resends of a delivery
MAX_HEADERS = 32
MAX_HEADER_VALUE = 256
REDACTED = "[redacted]"
# credentials whatever the partner: their values never reach Redis (nor the console)
CREDENTIALS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})

Headers = tuple[tuple[str, str], ...]

# the one-record hash's fields: type, body, receivedAt, entities (space-separated keys)
FIELDS = ("type", "body", "receivedAt", "entities")


@dataclass(frozen=True)
class Record:
    type: str | None  # the event type (Tradevest's notification name, ENS_<ActivityType>)
    body: bytes | None  # the body as delivered
    received_ms: int | None  # Redis's clock at intake
    entities: tuple[str, ...] = ()  # the entity keys it names
    headers: Headers = ()  # the request's headers, credentials redacted (kept_headers)


@dataclass(frozen=True)
class Resend:
    """A partner's resend of a delivery already taken in, answered as a duplicate."""

    received_ms: int  # Redis's clock when it came
    headers: Headers


MISSING = Record(None, None, None)

_encoder = msgspec.msgpack.Encoder()
_block = msgspec.msgpack.Decoder(list[Any])
_resend = msgspec.msgpack.Decoder(tuple[int, list[tuple[str, str]]])
NO_HEADERS = _encoder.encode(())


def kept_headers(
    raw: Iterable[tuple[bytes, bytes]], credentials: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """What the inbox keeps of a request's headers (ASGI's lower-case raw pairs): the
    first MAX_HEADERS, values cut to MAX_HEADER_VALUE, a credential's value REDACTED
    (CREDENTIALS, and the partner's own `credentials`)."""
    secret = CREDENTIALS.union(credentials)
    out: list[tuple[str, str]] = []
    for name, value in raw:
        if len(out) == MAX_HEADERS:
            break
        key = name.decode("latin-1")
        out.append((key, REDACTED if key in secret else value[:MAX_HEADER_VALUE].decode("latin-1")))
    return out


def encode_headers(headers: Sequence[tuple[str, str]]) -> bytes:
    """The headers part of a record (lua/intake.lua appends it, or keeps it with a resend)."""
    return _encoder.encode(headers) if headers else NO_HEADERS


def encode(event_type: str, entities: Sequence[str], body: bytes) -> bytes:
    """A delivery's record as the intake script stores it in its block, less its headers:
    a msgpack array of 4 whose last element (`encode_headers`) the script appends."""
    return (
        b"\x94"
        + _encoder.encode(event_type)
        + _encoder.encode(" ".join(entities))
        + (_encoder.encode(body))
    )


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
        found = block_of(delivery_id)
        archived = decoded.get(found[0], {}).get(found[1], MISSING) if found else MISSING
        type_, body, received, entities = single
        if type_ is not None:
            out.append(
                Record(
                    type_.decode() or None, body, int(received) if received else None,
                    tuple((entities or b"").decode().split()), archived.headers,
                )
            )  # fmt: skip
            continue
        out.append(archived)
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
        type_, entities, body, *rest = items[i + 1]
        headers = tuple((str(k), str(v)) for k, v in rest[0]) if rest else ()
        out[int(items[i])] = Record(type_, bytes(body), received, tuple(entities.split()), headers)
    return out


def resends(connection: redis.Redis, delivery_id: str) -> list[Resend]:
    """The partner's resends of a delivery, oldest first (the latest RESENDS_KEPT)."""
    out = []
    raw: Any
    for raw in connection.lrange(keys.resends(delivery_id), 0, -1):
        received, headers = _resend.decode(raw)
        out.append(Resend(received, tuple(headers)))
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
