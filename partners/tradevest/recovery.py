"""Missed-webhook recovery: `GET /webhooks-missing` and `GET /undelivered-webhooks`
(cursor-paged, from the last sweep on) name notifications Tradevest could not deliver;
each goes through the same intake as a delivery (dedupe drops what already arrived).

Their item schema is only partly known (tradevest-api.md §2: only `eventType` was seen;
§7 item 4), so an item is read leniently [inferred]: the notification is its `payload`
(the sandbox's reading), another wrapper field (`notification`, `body`, `data`), such a
field holding the notification as JSON text, or else the item itself less `eventType`.
An item not understood is logged (its field names, never its values), counted
(`partnersync_deliveries{source="sweeper",outcome="unreadable"}`) and dead-lettered with
its raw text (reason `recovery`), once per distinct item within the dedupe window.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec

from partnersync import dlq, keys, workqueue
from partnersync.context import Context
from schemas.dedupe import digest
from schemas.tradevest.events import BY_NAME, PARTNER
from schemas.tradevest.intake import Unusable, prepare

log = logging.getLogger("partnersync.sweeper")

_OVERLAP = timedelta(minutes=5)  # re-read a little of the last window: deliveries race
_WRAPPERS = ("payload", "notification", "body", "data")  # [inferred] where it may sit
OTHER = "OTHER"  # the counters' label for an event type Tradevest does not document


class Notification(NamedTuple):
    event_type: str
    body: bytes


class NotUnderstood(Exception):
    """A recovered item partnersync cannot take in; the message says what it lacks."""


def read_item(raw: bytes) -> Notification:
    """The notification a recovery item carries, or raises NotUnderstood."""
    try:
        item = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise NotUnderstood("not JSON") from None
    if not isinstance(item, dict):
        raise NotUnderstood("not a JSON object")
    event_type = item.get("eventType")
    if not isinstance(event_type, str) or not event_type:
        raise NotUnderstood("no eventType")
    if event_type not in BY_NAME:
        raise NotUnderstood(f"unknown event type {event_type}")
    for name in _WRAPPERS:
        value = item.get(name)
        if isinstance(value, str):
            try:
                value = msgspec.json.decode(value)
            except msgspec.DecodeError:
                continue
        if isinstance(value, dict):
            return Notification(event_type, msgspec.json.encode(value))
    rest = {k: v for k, v in item.items() if k != "eventType"}
    if not rest or set(rest) <= {"createdOn", "modifiedOn", "id"}:
        raise NotUnderstood(f"names no notification (fields: {', '.join(sorted(item))})")
    return Notification(event_type, msgspec.json.encode(rest))


def ingest(ctx: Context, raw: bytes, source: str) -> bool:
    """One recovered item through the normal intake: True when it was new to partnersync.
    What cannot be taken in is dead-lettered (`unreadable`)."""
    try:
        event_type, body = read_item(raw)
        event = BY_NAME[event_type]
        ids, dedupe = prepare(event, event_type, body, ctx.settings.max_entities)
    except NotUnderstood as exc:
        unreadable(ctx, raw, source, str(exc))
        return False
    except Unusable as exc:
        unreadable(ctx, raw, source, exc.detail, event_type)
        return False
    entities = [keys.entity_key(PARTNER, event.kind, i) for i in ids] if event.kind else []
    s = ctx.settings
    return ctx.workqueue.intake(
        workqueue.Delivery(event.name, body, entities, keys.dedupe(dedupe) if dedupe else ""),
        dedupe_ttl=s.dedupe_ttl,
        inbox_ttl=s.inbox_ttl,
    )


def unreadable(
    ctx: Context, raw: bytes, source: str, reason: str, event_type: str | None = None
) -> None:
    """Log, count and dead-letter (once per distinct item) a recovered item not taken in."""
    label = event_type if event_type in BY_NAME else OTHER
    log.warning(
        "recovered item not understood",
        extra={"source": source, "eventType": label, "problem": reason.split(":")[0]},
    )
    connection = ctx.connection
    connection.hincrby(keys.COUNTERS, f"recovered-unreadable:{label}", 1)
    item = digest("recovery", raw.decode("utf-8", "replace"))
    if not connection.set(keys.dedupe(item), 1, nx=True, ex=ctx.settings.dedupe_ttl):
        return  # already dead-lettered: the partner lists it again
    pipe = connection.pipeline()
    dlq.dead_letter(
        pipe, f"{PARTNER}:recovery:{item[:16]}", NotUnderstood(f"{source}: {reason}"), 1,
        datetime.now(UTC), ctx.settings.dlq_retention, reason="recovery",
        events=[dlq.DeadEvent.of(f"{source}-{item[:16]}", event_type, raw)],
    )  # fmt: skip
    pipe.execute()


async def missed_notifications(ctx: Context) -> int:
    """Both recovery endpoints; returns how many notifications were new to partnersync."""
    client = ctx.clients[PARTNER]
    recovered = 0
    listed = msgspec.json.decode(await client.get("/webhooks-missing"), type=list[msgspec.Raw])
    for raw in listed:
        recovered += ingest(ctx, bytes(raw), "webhooks-missing")
    last = ctx.connection.hget(keys.CLOCK, "undelivered-webhooks")
    params: dict[str, Any] = {}
    if last is not None:
        since = datetime.fromtimestamp(int(last) / 1000, UTC) - _OVERLAP
        params["startDate"] = since.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    started = workqueue.now_ms()
    async for raw in client.pages("/undelivered-webhooks", **params):
        recovered += ingest(ctx, bytes(raw), "undelivered-webhooks")
    ctx.connection.hset(keys.CLOCK, "undelivered-webhooks", started)
    return recovered
