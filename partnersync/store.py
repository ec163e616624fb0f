"""The entity store: current state, transition history, externalId index, change stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import redis

from partnersync import keys, replies
from schemas.store import EntityRecord, Transition

_record_decoder = msgspec.json.Decoder(EntityRecord)
_transition_decoder = msgspec.json.Decoder(Transition)
_encode = msgspec.json.encode


def _ms(record: EntityRecord) -> int:
    return int(record.updatedAt.timestamp() * 1000)


def decode_record(raw: bytes | str | None) -> EntityRecord | None:
    return None if raw is None else _record_decoder.decode(raw)


def load(connection: redis.Redis, entity_keys: Sequence[str]) -> list[EntityRecord | None]:
    if not entity_keys:
        return []
    return [decode_record(r) for r in connection.mget([keys.entity(k) for k in entity_keys])]


def history(connection: redis.Redis, entity_key: str) -> list[Transition]:
    return [
        _transition_decoder.decode(r) for r in connection.lrange(keys.history(entity_key), 0, -1)
    ]


def write(
    pipe: redis.client.Pipeline,
    record: EntityRecord,
    transition: Transition | None,
    *,
    changes_maxlen: int,
    history_max: int = 100,
) -> None:
    """Queue the writes of one reconciled entity on `pipe` (executed as one MULTI/EXEC).
    Its history keeps the `history_max` latest transitions (the change stream is the
    complete record, for the user's system to keep)."""
    pipe.set(keys.entity(record.key), _encode(record))
    pipe.zadd(keys.ENTITIES, {record.key: _ms(record)})
    if record.externalId:
        pipe.set(keys.external_id(record.partner, record.externalId), record.key)
    if transition is not None:
        if transition.from_ is not None:
            pipe.hincrby(
                keys.ENTITY_COUNTS, f"{record.partner}:{record.kind}:{transition.from_}", -1
            )
        pipe.hincrby(keys.ENTITY_COUNTS, f"{record.partner}:{record.kind}:{transition.to}", 1)
        pipe.rpush(keys.history(record.key), _encode(transition))
        pipe.ltrim(keys.history(record.key), -history_max, -1)
        fields: dict[Any, Any] = {
            "key": record.key,
            "partner": record.partner,
            "kind": record.kind,
            "id": record.id,
            "from": transition.from_ or "",
            "to": transition.to,
            "modifiedOn": transition.modifiedOn.isoformat() if transition.modifiedOn else "",
            "at": transition.at.isoformat(),
            "decision": transition.decision,
            "source": " ".join(transition.source),
            "externalId": record.externalId or "",
        }
        pipe.xadd(keys.CHANGES, fields, maxlen=changes_maxlen, approximate=True)


def watch(pipe: redis.client.Pipeline, entity_key: str, terminal: bool, clock_ms: int) -> None:
    """Non-terminal entities are watched (re-fetched when unchanged too long); `clock_ms`
    is Redis's time, which the sweeper compares against."""
    if terminal:
        pipe.zrem(keys.WATCH, entity_key)
    else:
        pipe.zadd(keys.WATCH, {entity_key: clock_ms})


def by_external_id(connection: redis.Redis, partner: str, external_id: str) -> str | None:
    return replies.optional_text(connection.get(keys.external_id(partner, external_id)))


def scan(
    connection: redis.Redis,
    *,
    partner: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    page: int = 500,
) -> list[EntityRecord]:
    """Every stored entity matching the filters, most recently updated last."""
    out: list[EntityRecord] = []
    start = 0
    while True:
        chunk = replies.texts(connection.zrange(keys.ENTITIES, start, start + page - 1))
        if not chunk:
            return out
        start += page
        for record in load(connection, chunk):
            if record is None:
                continue
            if partner and record.partner != partner:
                continue
            if kind and record.kind != kind:
                continue
            if status and record.status != status:
                continue
            out.append(record)
