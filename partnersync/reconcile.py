"""Reconcile a batch of claimed entities: fetch each from its partner (concurrently), apply
its lifecycle, and write the results in one pipelined MULTI/EXEC.

The events only say *which* entity changed; what it is now comes from the partner's GET.
From the events partnersync keeps what only a webhook delivers: validation errors.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec
import redis

from partnersync import dlq, inbox, keys, metrics, retry, store, workqueue
from partnersync.errors import Crashed, NotFound, Permanent, RateLimited, Retryable
from partnersync.kinds import Kind
from partnersync.partner import Note, NoteReader
from schemas.lifecycle import Decision, Observation
from schemas.store import EntityRecord, Rejection, Transition

if TYPE_CHECKING:
    from partnersync.context import Context

log = logging.getLogger("partnersync.reconcile")

_encode = msgspec.json.Encoder(decimal_format="number").encode  # amounts stay numbers


class NotVisible(Retryable):
    """404 for an entity that should exist: maybe not visible yet, maybe purged later."""


@dataclass
class Event:
    delivery_id: str
    type: str | None
    body: bytes | None
    notification: Note | None
    received_ms: int | None = None


@dataclass
class Applied:
    record: EntityRecord | None  # what to store; None when nothing changed
    transition: Transition | None
    decision: Decision


@dataclass
class Seen:
    """What the partner says the entity is now."""

    observation: Observation
    data: msgspec.Raw
    external_id: str | None
    purged: bool = False


_NULL = msgspec.Raw(b"null")
FROM_NOTIFICATIONS = object()  # fetch result of a kind mirrored from its notifications


def decode_event(notes: NoteReader, delivery_id: str, record: inbox.Record) -> Event:
    """An archived delivery, its notification read by its partner's `notes`."""
    name = record.type or None
    notification = notes(name, record.body)
    return Event(delivery_id, name, record.body, notification, record.received_ms)


def _no_notes(event_type: str | None, body: bytes | None) -> Note | None:
    return None


def _newest(events: list[tuple[Event, Note]]) -> tuple[Event, Note]:
    """The event with the latest modifiedOn (events without one count as oldest)."""
    return max(events, key=lambda en: (en[1].modifiedOn is not None, en[1].modifiedOn or 0))


def _purged_final(kind: Kind, status: str | None) -> bool:
    """A final status after which the partner purges the entity (Tradevest's INVALID)."""
    return status in kind.purgeable and kind.lifecycle.terminal(status or "")


def observe(
    kind: Kind, key: str, stored: EntityRecord | None, fetched: Any, events: list[Event]
) -> Seen:
    """The partner's current view: its GET; on a 404, what webhooks and the store say; for
    kinds without a GET, the newest notification."""
    notes = [e.notification for e in events if e.notification is not None]
    if fetched is FROM_NOTIFICATIONS:
        with_status = [(e, e.notification) for e in events if e.notification is not None]
        with_status = [(e, n) for e, n in with_status if n.status]
        if with_status:
            newest, n = _newest(with_status)
            return Seen(
                Observation(n.status or "", n.modifiedOn), msgspec.Raw(newest.body or b"null"), None
            )
        if stored is not None:
            return Seen(
                Observation(stored.status, stored.modifiedOn), stored.data, stored.externalId
            )
        last = next((e for e in reversed(events) if e.notification is not None), None)
        if last is None or last.notification is None:
            raise Permanent(f"{key}: no readable notification to mirror")
        # no status in the body: the notification type (CREATED/UPDATED) stands in for one
        observation = Observation(last.notification.notificationType, None)
        return Seen(observation, msgspec.Raw(last.body or b"null"), None)
    if fetched is None:
        final = next((n for n in reversed(notes) if _purged_final(kind, n.status)), None)
        if final is not None and final.status is not None:
            seen = Observation(final.status, final.modifiedOn)
        elif stored is not None and stored.status in kind.purgeable:
            seen = Observation(stored.status, stored.modifiedOn)
        else:
            raise NotVisible(f"{key}: partner answered 404")
        data = stored.data if stored is not None else _NULL
        return Seen(seen, data, stored.externalId if stored else None, purged=True)
    entity, raw = fetched
    return Seen(kind.observe(entity), raw, getattr(entity, "externalId", None))


def apply(
    kind: Kind,
    key: str,
    stored: EntityRecord | None,
    fetched: Any,
    events: list[Event],
    now: datetime,
    *,
    evicted: bool = False,
) -> Applied:
    """The new stored state of one entity. `fetched` is (entity, raw JSON) from the GET,
    None when the partner said 404, or FROM_NOTIFICATIONS. `evicted`: `stored` is the
    tombstone retention left (its final status and modifiedOn), which the lifecycle guards
    as it would the record: a late event re-fetches, and stores again only what is newer."""
    if evicted and fetched is None:  # gone at the partner too: nothing left to mirror
        return Applied(None, None, Decision.SAME)
    partner, kind_name, id = keys.split_entity_key(key)
    seen = observe(kind, key, stored, fetched, events)
    observed = seen.observation
    notes = [e.notification for e in events if e.notification is not None]
    create_errors = [n for n in notes if n.is_validation_error and n.status is not None]
    rejections = [
        Rejection(at=now, deliveryId=e.delivery_id, validationError=e.notification.validationError)
        for e in events
        if e.notification is not None
        and e.notification.is_validation_error
        and e.notification.status is None
    ]
    before = Observation(stored.status, stored.modifiedOn) if stored is not None else None
    decision = kind.lifecycle.decide(before, observed)
    if (
        decision is Decision.SAME
        and stored is not None
        and observed.modifiedOn is None
        and not seen.purged
        and bytes(seen.data) != bytes(stored.data)
    ):
        # no modification time to compare (Saxo's statuses): changed data at the same status
        # is news (a Pending signup's new PendingReasons)
        decision = Decision.REFRESH
    if evicted and not decision.writes:  # a tombstone keeps no more than this decides on
        return Applied(None, None, decision)
    validation_error = create_errors[-1].validationError if create_errors else None

    if stored is None:
        base = EntityRecord(
            key=key,
            partner=partner,
            kind=kind_name,
            id=id,
            status=observed.status,
            updatedAt=now,
            createdAt=now,
        )
    else:
        base = stored
    changes: dict[str, Any] = {}
    if decision.writes:
        changes.update(
            status=observed.status,
            modifiedOn=observed.modifiedOn,
            data=seen.data,
            knownStatus=kind.lifecycle.known(observed.status),
            purged=seen.purged,
        )
    if seen.purged and not base.purged:
        changes["purged"] = True
    if seen.external_id and seen.external_id != base.externalId:
        changes["externalId"] = seen.external_id
    if validation_error is not None and validation_error != base.validationError:
        changes["validationError"] = validation_error
    if rejections:
        known = {r.deliveryId for r in base.rejections}
        fresh = [r for r in rejections if r.deliveryId not in known]
        if fresh:
            changes["rejections"] = [*base.rejections, *fresh][-20:]
    if not changes and stored is not None:
        return Applied(None, None, decision)
    record = msgspec.structs.replace(base, updatedAt=now, **changes)
    transition = None
    if decision.changes_status:
        transition = Transition(
            key=key,
            from_=stored.status if stored is not None else None,
            to=observed.status,
            modifiedOn=observed.modifiedOn,
            at=now,
            decision=decision.value,
            source=[e.delivery_id for e in events],
        )
    return Applied(record, transition, decision)


@dataclass
class BatchResult:
    applied: int = 0
    unchanged: int = 0
    retried: int = 0
    dead: int = 0
    stored: list[tuple[EntityRecord, Transition]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "applied": self.applied,
            "unchanged": self.unchanged,
            "retried": self.retried,
            "dead": self.dead,
        }


async def _fetch(kind: Kind, ctx: Context, id: str, requestor: str | None) -> Any:
    if not kind.fetched:
        return FROM_NOTIFICATIONS
    assert kind.path is not None
    try:
        async with ctx.fetching:
            return kind.decode(await _get(ctx, kind, id, requestor))
    except NotFound:
        return None


async def _get(ctx: Context, kind: Kind, id: str, requestor: str | None) -> bytes:
    assert kind.path is not None
    client = ctx.clients[kind.partner]
    path = kind.path.format(id=quote(id, safe=""))  # Saxo's ClientKeys hold / + = |
    return await client.get(path, requestor_id=requestor)


def requestor_id(kind: Kind, stored: EntityRecord | None, events: list[Event]) -> str | None:
    """The Requestor-ID a GET needs: from a notification naming it, else the stored entity."""
    if kind.requestor is None:
        return None
    for e in reversed(events):
        value = getattr(e.notification, kind.requestor, None)
        if value:
            return str(value)
    if stored is not None and bytes(stored.data) != b"null":
        value = msgspec.json.decode(stored.data, type=dict).get(kind.requestor)
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
    crashed = workqueue.crashes(replies.pop())
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
                kind, ctx, keys.split_entity_key(key)[2], requestor_id(kind, records[i], events[i])
            )
            if kind and crashed[i] < ctx.settings.max_crashes
            else _crashed(key, crashed[i])
            if kind
            else _unknown_kind(key)
            for i, (key, kind) in enumerate(zip(entity_keys, kinds, strict=True))
        ),
        return_exceptions=True,
    )

    now = datetime.now(UTC)
    # Everything this job writes is conditioned on its leases (a paused worker's late
    # answer never overwrites what a successor stored).
    result = ctx.workqueue.fenced(
        me,
        entity_keys,
        lambda write, held, clock: _queue_writes(
            ctx,
            me,
            write,
            claimed,
            held,
            kinds,
            befores,
            fetched,
            events,
            attempts_raw,
            now,
            clock,
        ),  # fmt: skip
        failpoint="reconcile.before_write",
    )
    ctx.calls.clear()  # flushed with the batch
    if ctx.handlers:
        _call_handlers(ctx, result.stored, now)
    return result


def _queue_writes(
    ctx: Context,
    me: str,
    write: redis.client.Pipeline,
    claimed: list[tuple[str, list[str]]],
    held: list[bool],
    kinds: list[Kind | None],
    befores: list[store.Stored | None],
    fetched: list[Any],
    events: list[list[Event]],
    attempts_raw: list[int],
    now: datetime,
    clock: int,
) -> BatchResult:
    """Queue on `write` (in MULTI) what the batch stores; `clock` is Redis's time."""
    settings = ctx.settings
    result = BatchResult()
    for i, (key, _) in enumerate(claimed):
        if not held[i]:
            log.warning(
                "lease lost during reconcile; left to its new holder", extra={"entity": key}
            )
            continue
        kind, got, evs = kinds[i], fetched[i], events[i]
        attempts = attempts_raw[i]
        try:
            if isinstance(got, BaseException):
                raise got
            assert kind is not None
            before = befores[i]
            applied = apply(kind, key, before.record if before else None, got, evs, now,
                            evicted=before is not None and before.evicted)  # fmt: skip
        except Exception as exc:  # classified by the retry policy; nothing is dropped
            _failed(ctx, write, me, key, exc, attempts, evs, now, result)
            continue
        record = applied.record or (before.record if before else None)
        assert record is not None
        status = record.status
        store.watch(write, key, kind.lifecycle.terminal(status), clock)
        index = ctx.catalog.partners[kind.partner].index
        if index is not None and isinstance(got, tuple):
            index(write, kind, key, got[0], settings)  # the partner's own lookups
        if applied.record is not None:
            store.write(
                write, applied.record, applied.transition, before=before,
                changes_maxlen=settings.changes_maxlen, history_max=settings.history_max,
            )  # fmt: skip
            if applied.transition is not None:
                result.stored.append((applied.record, applied.transition))
            result.applied += 1
        else:
            result.unchanged += 1
        if applied.transition is not None and kind.attention:
            _attention(write, kind, key, applied.transition.to, clock)
        if kind.poll is not None and not kind.lifecycle.terminal(status):
            since = (now - (record.createdAt or now)).total_seconds()
            entity = got[0] if isinstance(got, tuple) else None
            delay = int(kind.poll(since, entity) * 1000)
            ctx.workqueue.complete(write, key, me, len(evs), "poll", delay)
        else:
            ctx.workqueue.complete(write, key, me, len(evs), "ok")
    for outcome, n in result.counts().items():
        if n:
            write.hincrby(keys.JOB_OUTCOMES, outcome, n)
    for evs in events:
        received = [e.received_ms for e in evs if e.received_ms]
        if received:
            metrics.observe_reconcile(write, max(0, clock - min(received)) / 1000)
    metrics.count_calls(write, dict(ctx.calls))
    return result


def _failed(
    ctx: Context,
    write: redis.client.Pipeline,
    me: str,
    key: str,
    exc: Exception,
    attempts: int,
    evs: list[Event],
    now: datetime,
    result: BatchResult,
) -> None:
    """Retried with backoff (the retry policy), or dead-lettered with its events."""
    settings = ctx.settings
    if isinstance(exc, RateLimited):  # nothing was sent: due again when the budget allows
        delay_ms = int((exc.retry_after or 1) * 1000)
        ctx.workqueue.complete(write, key, me, 0, "poll", delay_ms)
        result.retried += 1
        return
    delay = retry.delay_ms(
        settings,
        attempts,
        retryable=isinstance(exc, Retryable) and not isinstance(exc, Permanent),
        retry_after=getattr(exc, "retry_after", None),
    )
    if delay is not None:
        ctx.workqueue.complete(write, key, me, 0, "retry", delay)
        result.retried += 1
        log.info(
            "reconcile retry",
            extra={"entity": key, "attempt": attempts + 1, "error": _describe(exc)},
        )
        return
    dlq.dead_letter(
        write, key, exc, attempts + 1, now, settings.dlq_retention,
        events=[dlq.DeadEvent.of(e.delivery_id, e.type, e.body) for e in evs],
    )  # fmt: skip
    ctx.workqueue.complete(write, key, me, len(evs), "dead")
    result.dead += 1
    log.warning(
        "reconcile dead-lettered",
        extra={"entity": key, "attempts": attempts + 1, "error": _describe(exc)},
    )


def _attention(write: redis.client.Pipeline, kind: Kind, key: str, status: str, clock: int) -> None:
    """A status that needs a human (e.g. a Failed cash transfer) is listed; others leave."""
    if status in kind.attention:
        write.zadd(keys.ATTENTION, {key: clock})
        log.warning("needs a human", extra={"entity": key, "status": status})
    else:
        write.zrem(keys.ATTENTION, key)


async def _crashed(key: str, crashes: int) -> Any:
    raise Crashed(f"{key}: {crashes} attempts in a row crashed or lost their lease")


async def _unknown_kind(key: str) -> Any:
    raise Permanent(f"{key}: no reconciler for this partner/kind")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _call_handlers(
    ctx: Context, stored: list[tuple[EntityRecord, Transition]], now: datetime
) -> None:
    """After the transitions are stored. A failing handler is dead-lettered with its
    transition (replayable), never allowed to undo or block the stored state."""
    for record, transition in stored:
        for handler in ctx.handlers.for_transition(record.partner, record.kind, transition.to):
            try:
                handler(transition, record)
            except Exception as exc:
                pipe = ctx.connection.pipeline()
                dlq.dead_letter(
                    pipe, record.key, exc, 1, now, ctx.settings.dlq_retention,
                    reason="handler", transition=transition,
                )  # fmt: skip
                pipe.execute()
                log.warning(
                    "handler failed",
                    extra={"entity": record.key, "handler": getattr(handler, "__name__", "?")},
                )
