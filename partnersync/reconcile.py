"""Reconcile a batch of claimed entities: read their events and stored state in one round
trip, fetch each from its partner (concurrently), decide (decide.py), and write the
results in one pipelined MULTI/EXEC conditioned on the leases (persist.py); failures are
retried or dead-lettered (fail.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

from partnersync import inbox, keys, store, workqueue
from partnersync.decide import FROM_NOTIFICATIONS, Event, decode_event
from partnersync.errors import NotFound
from partnersync.fail import call_handlers, crashed, unknown_kind
from partnersync.kinds import Kind
from partnersync.partner import Note
from partnersync.persist import Batch, BatchResult, queue_writes
from schemas.store import EntityRecord

if TYPE_CHECKING:
    from partnersync.context import Context

__all__ = ["BatchResult", "run_batch"]


def _no_notes(event_type: str | None, body: bytes | None) -> Note | None:
    return None


async def _fetch(kind: Kind, ctx: Context, id: str, acting_for: str | None) -> Any:
    if not kind.fetched:
        return FROM_NOTIFICATIONS
    assert kind.path is not None
    try:
        async with ctx.fetching:
            return kind.decode(await _get(ctx, kind, id, acting_for))
    except NotFound:
        return None


async def _get(ctx: Context, kind: Kind, id: str, acting_for: str | None) -> bytes:
    assert kind.path is not None
    client = ctx.clients[kind.partner]
    path = kind.path.format(id=quote(id, safe=""))  # Saxo's ClientKeys hold / + = |
    return await client.get(path, acting_for=acting_for)


def acting_for(kind: Kind, stored: EntityRecord | None, events: list[Event]) -> str | None:
    """Whom a GET acts for, where the kind names it: from a notification naming it, else
    the stored entity."""
    if kind.acting_for is None:
        return None
    for e in reversed(events):
        value = getattr(e.notification, kind.acting_for, None)
        if value:
            return str(value)
    if stored is not None and bytes(stored.data) != b"null":
        value = msgspec.json.decode(stored.data, type=dict).get(kind.acting_for)
        return str(value) if value else None
    return None


async def run_batch(ctx: Context, me: str, claimed: list[tuple[str, list[str]]]) -> BatchResult:
    if not claimed:
        return BatchResult()
    connection = ctx.connection
    entity_keys = [k for k, _ in claimed]

    # One round trip: the archived events, the stored records, the attempt counters.
    pipe = connection.pipeline(transaction=False)
    delivery_ids = [d for _, ids in claimed for d in ids]
    split = inbox.queue_read(pipe, delivery_ids)
    store.read_queue(pipe, entity_keys)
    pipe.mget([keys.attempts(k) for k in entity_keys])
    pipe.mget([keys.claims(k) for k in entity_keys])
    replies = pipe.execute()
    crashes = workqueue.crashes(replies.pop())
    attempts_raw = [int(a or 0) for a in replies.pop()]
    befores = store.read_replies(connection, entity_keys, replies[split:])
    records = [b.record if b is not None else None for b in befores]
    delivered = iter(inbox.records(delivery_ids, replies[:split]))
    catalog = ctx.catalog
    decoded: dict[str, Event] = {}  # a delivery naming several entities is decoded once
    events = []
    kinds = []
    for key, ids in claimed:
        partner, kind_name, _ = keys.split_entity_key(key)
        kinds.append(catalog.kinds.get((partner, kind_name)))
        known = catalog.partners.get(partner)
        notes = known.notes if known is not None else _no_notes
        events.append(
            [
                decoded.get(d) or decoded.setdefault(d, decode_event(notes, d, next(delivered)))
                for d in ids
            ]
        )
    fetched = await asyncio.gather(
        *(
            _fetch(
                kind, ctx, keys.split_entity_key(key)[2], acting_for(kind, records[i], events[i])
            )
            if kind and crashes[i] < ctx.settings.max_crashes
            else crashed(key, crashes[i])
            if kind
            else unknown_kind(key)
            for i, (key, kind) in enumerate(zip(entity_keys, kinds, strict=True))
        ),
        return_exceptions=True,
    )
    now = datetime.now(UTC)
    batch = Batch(claimed, kinds, befores, list(fetched), events, attempts_raw, now)
    # Everything this job writes is conditioned on its leases (a paused worker's late
    # answer never overwrites what a successor stored).
    result = ctx.workqueue.fenced(
        me,
        entity_keys,
        lambda write, held, clock: queue_writes(ctx, me, write, batch, held, clock),
        failpoint="reconcile.before_write",
    )
    ctx.calls.clear()  # flushed with the batch
    if ctx.handlers:
        call_handlers(ctx, result.stored, now)
    return result
