"""When reconciling an entity fails: retried with backoff (partnersync/retry.py), or
dead-lettered with its events; a user handler's failure dead-lettered with its transition.
Nothing is dropped."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis

from partnersync import dlq, retry
from partnersync.decide import Event
from partnersync.errors import Crashed, Permanent, RateLimited, Retryable
from schemas.store import EntityRecord, Transition

if TYPE_CHECKING:
    from partnersync.context import Context

log = logging.getLogger("partnersync.reconcile")


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def failed(
    ctx: Context,
    write: redis.client.Pipeline,
    me: str,
    key: str,
    exc: Exception,
    attempts: int,
    events: list[Event],
    now: datetime,
) -> str:
    """Queue on `write` the retry or the dead letter; returns the outcome (retried, dead)."""
    settings = ctx.settings
    if isinstance(exc, RateLimited):  # nothing was sent: due again when the budget allows
        ctx.workqueue.complete(write, key, me, 0, "poll", int((exc.retry_after or 1) * 1000))
        return "retried"
    delay = retry.delay_ms(
        settings,
        attempts,
        retryable=isinstance(exc, Retryable) and not isinstance(exc, Permanent),
        retry_after=getattr(exc, "retry_after", None),
    )
    if delay is not None:
        ctx.workqueue.complete(write, key, me, 0, "retry", delay)
        log.info(
            "reconcile retry",
            extra={"entity": key, "attempt": attempts + 1, "error": describe(exc)},
        )
        return "retried"
    letters = [dlq.DeadEvent.of(e.delivery_id, e.type, e.body) for e in events]
    ctx.workqueue.bury(
        write, key, me, exc, attempts + 1, now, retention=settings.dlq_retention, events=letters
    )
    log.warning(
        "reconcile dead-lettered",
        extra={"entity": key, "attempts": attempts + 1, "error": describe(exc)},
    )
    return "dead"


async def crashed(key: str, crashes: int) -> Any:
    raise Crashed(f"{key}: {crashes} attempts in a row crashed or lost their lease")


async def unknown_kind(key: str) -> Any:
    raise Permanent(f"{key}: no reconciler for this partner/kind")


def call_handlers(
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
