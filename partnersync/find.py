"""What an id is: an entity's partner id (Saxo's ClientKey, TransactionId), an externalId
(Saxo's ExternalReference), another id a create returned (Saxo's SignUpId), a delivery id
or a command's externalId, asked of Redis in one round trip (one lookup per kind of id;
no scan).

The partner id is tried against every kind the partners define: an entity key is
`{partner}:{kind}:{id}`, so each kind costs one EXISTS and one tombstone lookup (an entity
retention evicted is still found, with its final status).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from partnersync import commands, inbox, keys, replies, store
from partnersync.partner import Catalog


@dataclass(frozen=True)
class Found:
    what: str  # entity | externalId | alias | delivery | command
    entity: str | None  # the entity key it leads to, where it leads to one
    detail: str = ""


def find(connection: redis.Redis, catalog: Catalog, ident: str) -> list[Found]:
    """Every reading of `ident` that Redis holds (usually one)."""
    kinds = sorted(catalog.kinds)
    partners = sorted(catalog.partners)
    pipe = connection.pipeline(transaction=False)
    candidates = [keys.entity_key(partner, kind, ident) for partner, kind in kinds]
    store.read_queue(pipe, candidates)
    for partner in partners:
        store.queue_by_external_id(pipe, partner, ident)
    for partner in partners:
        pipe.hget(*keys.alias(partner, ident))
        pipe.get(keys.older_alias(partner, ident))
    commands.queue_read(pipe, [ident])
    inbox.queue_read(pipe, [ident])
    replies_ = pipe.execute()
    found: list[Found] = []
    stored = store.read_replies(connection, candidates, replies_[:1])
    for (partner, kind), entity, got in zip(kinds, candidates, stored, strict=True):
        if got is None:
            continue
        if not got.evicted:
            found.append(Found("entity", entity, catalog.kinds[(partner, kind)].id_name))
        else:
            gone = got.record
            detail = f"evicted after retention: {gone.status} since {gone.updatedAt:%Y-%m-%d}"
            found.append(Found("entity", entity, detail))
    rest = replies_[1:]
    linked = [store.linked_key(p, rest[n]) for n, p in enumerate(partners)]
    by_external = {p: k for p, k in zip(partners, linked, strict=True) if k is not None}
    found += [
        Found("externalId", key, f"{p} {catalog.partners[p].external_id_name}")
        for p, key in by_external.items()
    ]
    rest = rest[len(partners) :]
    for n, p in enumerate(partners):
        value = rest[2 * n] if rest[2 * n] is not None else rest[2 * n + 1]
        if value is not None:  # "SignUpId=saxo:signup:…"
            name, _, entity = replies.text(value).partition("=")
            found.append(Found("alias", entity, f"{p} {name}"))
    rest = rest[2 * len(partners) :]
    delivery = inbox.records([ident], rest[1:])[0]
    if delivery.type is not None:
        detail = f"delivery of {delivery.type}"
        named = delivery.entities
        found += [Found("delivery", e, detail) for e in named] or [Found("delivery", None, detail)]
    record = commands.decode(rest[0][0])
    if record is not None:
        command = catalog.commands.get(record.kind)
        led_to: str | None = None
        if command is not None:  # its entity: by the partner id it got, or by its externalId
            led_to = (
                keys.entity_key(command.partner, command.entity_kind, record.entityId)
                if record.entityId
                else by_external.get(command.partner)
            )
        found.append(Found("command", led_to, f"command {record.kind} {record.state}"))
    return found
