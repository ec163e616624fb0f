"""What a reconcile batch stores, queued on one MULTI (conditioned on the batch's leases by
the work queue's `fenced`): each entity's new state, its watch and index entries, its
attention mark, its completion in the work queue, and the batch's figures."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis

from partnersync import keys, metrics, store
from partnersync.decide import Applied, Event, apply
from partnersync.fail import failed
from partnersync.kinds import Kind
from schemas.store import EntityRecord, Transition

if TYPE_CHECKING:
    from partnersync.context import Context

log = logging.getLogger("partnersync.reconcile")


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


@dataclass
class Batch:
    """What a claim read and fetched, entity by entity (the lists are parallel)."""

    claimed: list[tuple[str, list[str]]]
    kinds: list[Kind | None]
    befores: list[store.Stored | None]
    fetched: list[Any]  # (entity, raw), None (404), FROM_NOTIFICATIONS, or the exception
    events: list[list[Event]]
    attempts: list[int]
    now: datetime


def queue_writes(
    ctx: Context, me: str, write: redis.client.Pipeline, batch: Batch, held: list[bool], clock: int
) -> BatchResult:
    """Queue on `write` (in MULTI) what the batch stores; `clock` is Redis's time."""
    result = BatchResult()
    for i, (key, _) in enumerate(batch.claimed):
        if not held[i]:
            log.warning(
                "lease lost during reconcile; left to its new holder", extra={"entity": key}
            )
            continue
        got, events, before = batch.fetched[i], batch.events[i], batch.befores[i]
        try:
            if isinstance(got, BaseException):
                raise got
            kind = batch.kinds[i]
            assert kind is not None
            applied = apply(kind, key, before.record if before else None, got, events, batch.now,
                            evicted=before is not None and before.evicted)  # fmt: skip
        except Exception as exc:  # classified by the retry policy; nothing is dropped
            outcome = failed(ctx, write, me, key, exc, batch.attempts[i], events, batch.now)
            setattr(result, outcome, getattr(result, outcome) + 1)
            continue
        _queue_one(ctx, me, write, kind, key, before, got, events, applied, batch.now, clock)
        if applied.record is None:
            result.unchanged += 1
            continue
        result.applied += 1
        if applied.transition is not None:
            result.stored.append((applied.record, applied.transition))
    _figures(ctx, write, result, batch.events, clock)
    return result


def _queue_one(
    ctx: Context,
    me: str,
    write: redis.client.Pipeline,
    kind: Kind,
    key: str,
    before: store.Stored | None,
    got: Any,
    events: list[Event],
    applied: Applied,
    now: datetime,
    clock: int,
) -> None:
    record = applied.record or (before.record if before else None)
    assert record is not None
    status = record.status
    settings = ctx.settings
    changed = int(record.updatedAt.timestamp() * 1000)
    due = None if kind.lifecycle.terminal(status) else store.next_check(
        clock, changed, kind.stale_after_s, settings.watch_days
    )  # fmt: skip
    store.watch(write, key, due)
    index = ctx.catalog.partners[kind.partner].index
    if index is not None and isinstance(got, tuple):
        index(write, kind, key, got[0], settings)  # the partner's own lookups
    if applied.record is not None:
        store.write(
            write, applied.record, applied.transition, before=before,
            changes_maxlen=settings.changes_maxlen, history_max=settings.history_max,
        )  # fmt: skip
    if applied.transition is not None and kind.attention:
        _attention(write, kind, key, applied.transition.to, clock)
    if kind.poll is not None and not kind.lifecycle.terminal(status):
        since = (now - (record.createdAt or now)).total_seconds()
        entity = got[0] if isinstance(got, tuple) else None
        delay = int(kind.poll(since, entity) * 1000)
        ctx.workqueue.complete(write, key, me, len(events), "poll", delay)
    else:
        ctx.workqueue.complete(write, key, me, len(events), "ok")


def _attention(write: redis.client.Pipeline, kind: Kind, key: str, status: str, clock: int) -> None:
    """A status that needs a human (e.g. a Failed cash transfer) is listed; others leave."""
    if status in kind.attention:
        write.zadd(keys.ATTENTION, {key: clock})
        log.warning("needs a human", extra={"entity": key, "status": status})
    else:
        write.zrem(keys.ATTENTION, key)


def _figures(
    ctx: Context,
    write: redis.client.Pipeline,
    result: BatchResult,
    events: list[list[Event]],
    clock: int,
) -> None:
    for outcome, n in result.counts().items():
        if n:
            write.hincrby(keys.JOB_OUTCOMES, outcome, n)
    for evs in events:
        received = [e.received_ms for e in evs if e.received_ms]
        if received:
            metrics.observe_reconcile(write, max(0, clock - min(received)) / 1000)
    metrics.count_calls(write, dict(ctx.calls))
