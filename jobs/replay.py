"""Replay dead letters through the normal path: events back into their entity's event
list, the entity marked due, reconciliation as for any delivery. Replaying twice, or after
the entity moved on, changes nothing wrongly: reconciliation re-fetches and only moves
forward."""

from __future__ import annotations

import time
from typing import IO

import redis

from jobs import dlq, store
from partnersync import handlers, keys, workqueue
from partnersync.config import Settings


def _requeue(connection: redis.Redis, settings: Settings, letter: dlq.DeadLetter) -> None:
    pipe = connection.pipeline(transaction=True)
    for event in letter.events:
        inbox = keys.inbox(event.deliveryId)
        pipe.hset(
            inbox,
            mapping={
                "type": event.type or "",
                "body": (event.body or "").encode(),
                "receivedAt": workqueue.now_ms(),
                "entities": letter.entity,
            },
        )
        pipe.expire(inbox, settings.inbox_ttl)
        pipe.rpush(keys.events(letter.entity), event.deliveryId)
    pipe.delete(keys.attempts(letter.entity))
    pipe.execute()


def replay(
    connection: redis.Redis,
    settings: Settings,
    ids: list[str] | None,
    *,
    progress: IO[str] | None = None,
    wait_s: float = 120.0,
) -> dict[str, int]:
    """Replay the given letters (all when `ids` is None); wait for their outcome."""
    wq = workqueue.WorkQueue.from_settings(connection, settings)
    wanted = dlq.ids(connection) if ids is None else ids
    summary = {"replayed": 0, "succeeded": 0, "failed_again": 0, "missing": 0}
    started = workqueue.now_ms()
    pending: set[str] = set()
    user_handlers: handlers.Handlers | None = None
    for n, dlq_id in enumerate(wanted, 1):
        letter = dlq.get(connection, dlq_id)
        if progress:
            progress.write(f"\rreplaying {n}/{len(wanted)}")
            progress.flush()
        if letter is None:
            summary["missing"] += 1
            continue
        summary["replayed"] += 1
        if letter.reason == "handler" and letter.transition is not None:
            user_handlers = user_handlers or handlers.load(settings.handlers)
            record = store.load(connection, [letter.entity])[0]
            try:
                for handler in user_handlers.for_transition(
                    record.partner, record.kind, letter.transition.to
                ):
                    handler(letter.transition, record)
            except Exception:
                summary["failed_again"] += 1
                continue
            dlq.remove(connection, dlq_id)
            summary["succeeded"] += 1
            continue
        _requeue(connection, settings, letter)
        dlq.remove(connection, dlq_id)
        pending.add(letter.entity)
    if pending:
        wq.touch(sorted(pending))
    waiting = sorted(pending)
    deadline = time.monotonic() + wait_s
    while waiting and time.monotonic() < deadline:
        time.sleep(0.2)
        pipe = connection.pipeline(transaction=False)
        for entity in waiting:
            pipe.zscore(keys.DIRTY, entity)
        waiting = [e for e, score in zip(waiting, pipe.execute(), strict=True) if score is not None]
    failed = {
        letter.entity
        for letter in dlq.all_letters(connection)
        if letter.entity in pending and int(letter.at.timestamp() * 1000) >= started
    }
    summary["failed_again"] += len(failed)
    summary["succeeded"] += len(pending) - len(failed) - len(set(waiting) - failed)
    summary["still_pending"] = len(set(waiting) - failed)
    if progress:
        progress.write("\n")
    return summary
