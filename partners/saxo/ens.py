"""Saxo ENS activities → events, on the same pipeline as a webhook.

The clock polls `GET /ens/v1/activities` for the owner (ClientKey = SAXO_CLIENT_KEY,
IncludeSubAccounts) and resumes from the last SequenceId it processed (kept in Redis).
Each activity is archived, deduplicated by SequenceId and enqueued like a delivery, so DLQ,
replay and handlers work the same. AccountFundings name the partner cash transfer they
confirm (by ExternalReference or position id): it is reconciled at once instead of waiting
for its next status poll. Every other activity (Orders, Positions, CorporateActions,
MarginCalls, a funding partnersync did not make) is an entity of its own,
`saxo:activity:{SequenceId}` (schemas/saxo/activities.py), logged as it comes in. When the
checkpoint has left Saxo's cache the poller falls back to a FromDateTime window from the
last activity it saw, says so in the log and a counter, and never silently skips.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from partners.saxo import keys as saxo_keys
from partners.saxo.settings import SaxoSettings
from partnersync import keys, replies, store, workqueue
from partnersync.context import Context
from partnersync.errors import PartnerError
from schemas.dedupe import digest

log = logging.getLogger("partnersync.ens")

# a query array: Activities=AccountFundings&Activities=Orders&… (ens.yaml: form, exploded)
ACTIVITIES = ["AccountFundings", "Orders", "Positions", "CorporateActions", "MarginCalls"]
CHECKPOINT = saxo_keys.ENS_CHECKPOINT
LAST_TIME = saxo_keys.ENS_LAST_TIME
FIRST_WINDOW = timedelta(hours=1)  # how far back the very first poll looks
OVERLAP = timedelta(minutes=5)  # fallback window margin: dedupe absorbs the repeats


def event_type(activity_type: str) -> str:
    """AccountFundings → ENS_ACCOUNT_FUNDINGS (the intake's event-type names)."""
    snake = "".join(f"_{c}" if c.isupper() else c for c in activity_type).lstrip("_").upper()
    return f"ENS_{snake}"


def _sequence_unavailable(exc: PartnerError) -> bool:
    """A 400 to a SequenceId request because the id has left the ENS cache. By ErrorCode,
    not by text: SequenceIdUnavailable where Saxo names it (ens.yaml, on the subscription
    it shares the cache with), else InvalidArguments, the only code ens.yaml lists for a
    GET's arguments [inferred]. A wrong guess costs one window read again, which dedupe
    absorbs; a request that is really wrong fails again on the window and is raised."""
    code = getattr(exc.body, "errorCode", None)
    return exc.status == 400 and code in ("SequenceIdUnavailable", "InvalidArguments")


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _fetch(ctx: Context, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [item async for item in ctx.clients["saxo"].pages("/ens/v1/activities", **params)]


def cash_transfer_of(ctx: Context, activity: dict[str, Any]) -> str | None:
    """The partner cash transfer an AccountFundings activity confirms, if partnersync knows it."""
    reference = activity.get("ExternalExecutionReference")
    if reference:
        linked = store.by_external_id(ctx.connection, "saxo", reference)
        if linked:
            return linked
    position = activity.get("PositionId")
    if position:
        return position_of(ctx.connection, str(position), ctx.settings.dlq_retention)
    return None


def position_of(connection: Any, position: str, retention_s: int) -> str | None:
    """The cash transfer that made a position, seen within `retention_s`: the day hashes
    from today back, newest first (plus the key an older store kept)."""
    today = int(time.time() // 86_400)
    pipe = connection.pipeline(transaction=False)
    for day in range(today, today - retention_s // 86_400 - 2, -1):
        pipe.hget(saxo_keys.positions(day, position), position)
    pipe.get(saxo_keys.position(position))
    *days, older = pipe.execute()
    found = next((d for d in days if d is not None), None)
    if found is not None:
        return keys.entity_key("saxo", "cash-transfer", replies.text(found))
    return replies.text(older) if older is not None else None


async def poll(ctx: Context) -> int:
    """One poll; returns how many activities were new."""
    s = ctx.settings
    client_key = SaxoSettings.of(s).client_key
    if not client_key:
        return 0
    base = {
        "ClientKey": client_key,
        "IncludeSubAccounts": "true",
        "Activities": ACTIVITIES,
        "$top": 1000,
    }
    checkpoint = ctx.connection.get(CHECKPOINT)
    try:
        if checkpoint:
            items = await _fetch(ctx, {**base, "SequenceId": replies.text(checkpoint)})
        else:
            items = await _fetch(
                ctx, {**base, "FromDateTime": _iso(datetime.now(UTC) - FIRST_WINDOW)}
            )
    except PartnerError as exc:
        if not (checkpoint and _sequence_unavailable(exc)):
            raise
        last = ctx.connection.get(LAST_TIME)
        since = (
            datetime.fromisoformat(replies.text(last)) - OVERLAP
            if last
            else datetime.now(UTC) - FIRST_WINDOW
        )
        log.warning(
            "ENS checkpoint no longer available: falling back to a FromDateTime window",
            extra={
                "sequenceId": replies.optional_text(checkpoint),
                "fromDateTime": _iso(since),
            },
        )
        ctx.connection.hincrby(keys.COUNTERS, "ens-fallback:ENS", 1)
        items = await _fetch(ctx, {**base, "FromDateTime": _iso(since)})
    new = 0
    for item in items:
        activity_type, sequence = str(item.get("ActivityType")), str(item.get("SequenceId"))
        entity = cash_transfer_of(ctx, item) if activity_type == "AccountFundings" else None
        event = workqueue.Delivery(
            event_type(activity_type),
            msgspec.json.encode(item),
            [entity or keys.entity_key("saxo", "activity", sequence)],
            keys.dedupe(digest("ens", sequence)),
        )
        taken = ctx.workqueue.intake(
            event, dedupe_ttl=s.dedupe_ttl, inbox_ttl=s.inbox_ttl, source="ens-"
        )
        if taken and entity is None:
            log.info(
                "saxo activity",
                extra={"activityType": activity_type, "sequenceId": sequence,
                       "accountId": item.get("AccountId")},
            )  # fmt: skip
        new += taken
    if items:
        # after the intake: a crash in between re-reads, and dedupe absorbs it
        last_item = items[-1]
        ctx.connection.set(CHECKPOINT, str(last_item["SequenceId"]))
        ctx.connection.set(LAST_TIME, str(last_item.get("ActivityTime") or _iso(datetime.now(UTC))))
    return new
