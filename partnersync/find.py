"""What an id is: an entity's partner id, an externalId (Saxo's ExternalReference too), a
delivery id or a command's externalId, asked of Redis in one round trip (one lookup per
kind of id; no scan).

The partner id is tried against every kind the partners define: an entity key is
`{partner}:{kind}:{id}`, so each kind costs one EXISTS.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from partnersync import commands, keys, replies
from partnersync.partner import Catalog


@dataclass(frozen=True)
class Found:
    what: str  # entity | externalId | delivery | command
    entity: str | None  # the entity key it leads to, where it leads to one
    detail: str = ""


def find(connection: redis.Redis, catalog: Catalog, ident: str) -> list[Found]:
    """Every reading of `ident` that Redis holds (usually one)."""
    kinds = sorted(catalog.kinds)
    partners = sorted(catalog.partners)
    pipe = connection.pipeline(transaction=False)
    for partner, kind in kinds:
        pipe.exists(keys.entity(keys.entity_key(partner, kind, ident)))
    for partner in partners:
        pipe.get(keys.external_id(partner, ident))
    pipe.hmget(keys.inbox(ident), ["type", "entities"])
    pipe.get(keys.command(ident))
    replies_ = pipe.execute()
    found: list[Found] = []
    for (partner, kind), exists in zip(kinds, replies_, strict=False):
        if exists:
            found.append(Found("entity", keys.entity_key(partner, kind, ident), "partner id"))
    rest = replies_[len(kinds) :]
    by_external = {
        p: replies.text(k) for p, k in zip(partners, rest, strict=False) if k is not None
    }
    found += [Found("externalId", key, f"{p} externalId") for p, key in by_external.items()]
    event_type, entities = rest[len(partners)]
    if event_type is not None:
        named = replies.text(entities or b"").split()
        detail = f"delivery of {replies.text(event_type)}"
        found += [Found("delivery", e, detail) for e in named] or [Found("delivery", None, detail)]
    record = commands.decode(rest[len(partners) + 1])
    if record is not None:
        command = catalog.commands.get(record.kind)
        entity = None
        if command is not None:  # its entity: by the partner id it got, or by its externalId
            entity = (
                keys.entity_key(command.partner, command.entity_kind, record.entityId)
                if record.entityId
                else by_external.get(command.partner)
            )
        found.append(Found("command", entity, f"command {record.kind} {record.state}"))
    return found
