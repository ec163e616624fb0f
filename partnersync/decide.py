"""What an entity is now, and what of it to store: pure decisions, no I/O.

The events only say *which* entity changed; what it is now comes from the partner's GET
(`observe`), and the lifecycle says whether that moves the stored state (`apply`). From
the events partnersync keeps what only a webhook delivers: validation errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from partnersync import inbox, keys
from partnersync.errors import Permanent, Retryable
from partnersync.kinds import Kind
from partnersync.partner import Note, NoteReader
from schemas.lifecycle import Decision, Observation
from schemas.store import EntityRecord, Rejection, Transition

_NULL = msgspec.Raw(b"null")
FROM_NOTIFICATIONS = object()  # fetch result of a kind mirrored from its notifications
REJECTIONS_KEPT = 20


class NotVisible(Retryable):
    """404 for an entity that should exist: maybe not visible yet, maybe purged later."""


@dataclass
class Event:
    """An archived delivery as reconcile reads it, its notification read by its partner."""

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


def decode_event(notes: NoteReader, delivery_id: str, record: inbox.Record) -> Event:
    """An archived delivery, its notification read by its partner's `notes`."""
    name = record.type or None
    notification = notes(name, record.body)
    return Event(delivery_id, name, record.body, notification, record.received_ms)


def _newest(events: list[tuple[Event, Note]]) -> tuple[Event, Note]:
    """The event with the latest modifiedOn (events without one count as oldest)."""
    return max(events, key=lambda en: (en[1].modifiedOn is not None, en[1].modifiedOn or 0))


def _purged_final(kind: Kind, status: str | None) -> bool:
    """A final status after which the partner purges the entity (Tradevest's INVALID)."""
    return status in kind.purgeable and kind.lifecycle.terminal(status or "")


def _from_notifications(key: str, stored: EntityRecord | None, events: list[Event]) -> Seen:
    """A kind without a GET: its newest notification with a status, else what is stored."""
    with_status = [(e, e.notification) for e in events if e.notification is not None]
    with_status = [(e, n) for e, n in with_status if n.status]
    if with_status:
        newest, n = _newest(with_status)
        body = msgspec.Raw(newest.body or b"null")
        return Seen(Observation(n.status or "", n.modifiedOn), body, None)
    if stored is not None:
        return Seen(Observation(stored.status, stored.modifiedOn), stored.data, stored.externalId)
    last = next((e for e in reversed(events) if e.notification is not None), None)
    if last is None or last.notification is None:
        raise Permanent(f"{key}: no readable notification to mirror")
    # no status in the body: what happened (Tradevest's CREATED/UPDATED) stands in for one
    observation = Observation(last.notification.change, None)
    return Seen(observation, msgspec.Raw(last.body or b"null"), None)


def _after_404(kind: Kind, key: str, stored: EntityRecord | None, events: list[Event]) -> Seen:
    """The partner answered 404: purged after a final status a notification or the store
    names, else not visible (yet)."""
    notes = [e.notification for e in events if e.notification is not None]
    final = next((n for n in reversed(notes) if _purged_final(kind, n.status)), None)
    if final is not None and final.status is not None:
        seen = Observation(final.status, final.modifiedOn)
    elif stored is not None and stored.status in kind.purgeable:
        seen = Observation(stored.status, stored.modifiedOn)
    else:
        raise NotVisible(f"{key}: partner answered 404")
    data = stored.data if stored is not None else _NULL
    return Seen(seen, data, stored.externalId if stored else None, purged=True)


def observe(
    kind: Kind, key: str, stored: EntityRecord | None, fetched: Any, events: list[Event]
) -> Seen:
    """The partner's current view: its GET; on a 404, what webhooks and the store say; for
    kinds without a GET, the newest notification."""
    if fetched is FROM_NOTIFICATIONS:
        return _from_notifications(key, stored, events)
    if fetched is None:
        return _after_404(kind, key, stored, events)
    entity, raw = fetched
    return Seen(kind.observe(entity), raw, getattr(entity, "externalId", None))


def _decision(kind: Kind, stored: EntityRecord | None, seen: Seen, evicted: bool) -> Decision:
    before = Observation(stored.status, stored.modifiedOn) if stored is not None else None
    decision = kind.lifecycle.decide(before, seen.observation)
    if (
        decision is Decision.SAME
        and stored is not None
        and not evicted  # a tombstone keeps no data to compare with
        and seen.observation.modifiedOn is None
        and not seen.purged
        and bytes(seen.data) != bytes(stored.data)
    ):
        # no modification time to compare (Saxo's statuses): changed data at the same status
        # is news (a Pending signup's new PendingReasons)
        return Decision.REFRESH
    return decision


def _from_webhooks(base: EntityRecord, events: list[Event], now: datetime) -> dict[str, Any]:
    """What only webhooks deliver: a create's validation error, later refusals."""
    changes: dict[str, Any] = {}
    notes = [e.notification for e in events if e.notification is not None]
    create_errors = [n for n in notes if n.refused and n.status is not None]
    refusal = create_errors[-1].refusal if create_errors else None
    if refusal is not None and refusal != base.refusal:
        changes["refusal"] = refusal
    known = {r.deliveryId for r in base.rejections}
    fresh = [
        Rejection(at=now, deliveryId=e.delivery_id, refusal=e.notification.refusal)
        for e in events
        if e.notification is not None
        and e.notification.refused
        and e.notification.status is None
        and e.delivery_id not in known
    ]
    if fresh:
        changes["rejections"] = [*base.rejections, *fresh][-REJECTIONS_KEPT:]
    return changes


def _changes(
    kind: Kind,
    base: EntityRecord,
    seen: Seen,
    decision: Decision,
    events: list[Event],
    now: datetime,
) -> dict[str, Any]:
    observed = seen.observation
    changes: dict[str, Any] = {}
    if decision.writes:
        changes.update(
            status=observed.status, modifiedOn=observed.modifiedOn, data=seen.data,
            knownStatus=kind.lifecycle.known(observed.status), purged=seen.purged,
        )  # fmt: skip
    if seen.purged and not base.purged:
        changes["purged"] = True
    if seen.external_id and seen.external_id != base.externalId:
        changes["externalId"] = seen.external_id
    return changes | _from_webhooks(base, events, now)


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
    seen = observe(kind, key, stored, fetched, events)
    decision = _decision(kind, stored, seen, evicted)
    if evicted and not decision.writes:  # a tombstone keeps no more than this decides on
        return Applied(None, None, decision)
    observed = seen.observation
    partner, kind_name, id = keys.split_entity_key(key)
    base = stored if stored is not None else EntityRecord(
        key=key, partner=partner, kind=kind_name, id=id, status=observed.status,
        updatedAt=now, createdAt=now,
    )  # fmt: skip
    changes = _changes(kind, base, seen, decision, events, now)
    if not changes and stored is not None:
        return Applied(None, None, decision)
    record = msgspec.structs.replace(base, updatedAt=now, **changes)
    transition = None
    if decision.changes_status:
        transition = Transition(
            key=key, from_=stored.status if stored is not None else None, to=observed.status,
            modifiedOn=observed.modifiedOn, at=now, decision=decision.value,
            source=[e.delivery_id for e in events],
        )  # fmt: skip
    return Applied(record, transition, decision)
