"""Replay dead letters through the normal path: events back into their entity's event
list, the entity marked due, reconciliation as for any delivery. Replaying twice, or after
the entity moved on, changes nothing wrongly: reconciliation re-fetches and only moves
forward.

Each letter is taken by one replayer atomically:
- a reconcile or command letter goes back through the work queue (`WorkQueue.requeue`):
  it leaves the DLQ in the same MULTI/EXEC that puts its events back and marks its entity
  due, so an interruption at any point loses nothing: a letter is either still in the DLQ
  or its entity is due.
- a handler letter is locked (SET NX, expiring) while its handler runs, and removed only
  after the handler succeeded; a failure or an interruption releases it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

import redis

from partnersync import dlq, failpoints, handlers, keys, store, workqueue
from partnersync.config import Settings
from partnersync.workqueue import Taken

SHOWN = 100  # entities named per outcome (the counts cover them all)
HANDLER_LOCK_S = 300  # a replayer killed mid-handler leaves its lock this long


@dataclass
class Summary:
    """What a replay did, by letter and by entity."""

    letters: int = 0  # letters asked for
    requeued: int = 0  # letters whose events went back to their entity
    handlers_ok: int = 0  # handler letters whose handler now succeeded
    handlers_failed: int = 0  # ... failed again (the letter stays)
    missing: int = 0  # no such letter (expired, purged)
    taken: int = 0  # another replayer had it
    entities: set[str] = field(default_factory=set)  # entities made due
    applied: int = 0  # of those: reconciled since
    failed_again: int = 0  # of those: dead-lettered again
    still_pending: int = 0  # of those: not done when the wait ended
    interrupted: bool = False
    outcome_of: dict[str, str] = field(default_factory=dict)  # every entity's outcome

    @property
    def outcomes(self) -> dict[str, list[str]]:
        """The entities of each outcome, the first SHOWN of each (what the console names)."""
        named: dict[str, list[str]] = {}
        for entity, outcome in sorted(self.outcome_of.items()):
            named.setdefault(outcome, []).append(entity)
        return {name: found[:SHOWN] for name, found in named.items()}

    def as_dict(self) -> dict[str, object]:
        return {
            "letters": self.letters,
            "requeued": self.requeued,
            "handlers_ok": self.handlers_ok,
            "handlers_failed": self.handlers_failed,
            "missing": self.missing,
            "taken_by_another_replay": self.taken,
            "entities": len(self.entities),
            "entities_applied": self.applied,
            "entities_failed_again": self.failed_again,
            "entities_still_pending": self.still_pending,
            "interrupted": self.interrupted,
            "outcomes": self.outcomes,
        }

    @property
    def ok(self) -> bool:
        """Every letter asked for was replayed and every replayed one went through."""
        return not (
            self.missing or self.taken or self.handlers_failed or self.failed_again
            or self.still_pending or self.interrupted
        )  # fmt: skip


def _run_handler(
    connection: redis.Redis, letter: dlq.DeadLetter, user_handlers: handlers.Handlers, me: str
) -> bool:
    """Call a failed handler again under the letter's lock; True when it succeeded."""
    lock = keys.dead_letter(letter.id) + ":replaying"
    if not connection.set(lock, me, nx=True, ex=HANDLER_LOCK_S):
        raise Taken(letter.id)
    try:
        failpoints.hit("replay.claimed")
        if connection.zscore(keys.DLQ, letter.id) is None:
            raise Taken(letter.id)  # replayed by another while we took the lock
        record = store.load(connection, [letter.entity])[0]
        assert letter.transition is not None
        try:
            if record is not None:
                for handler in user_handlers.for_transition(
                    record.partner, record.kind, letter.transition.to
                ):
                    handler(letter.transition, record)
        except Exception:
            return False
        dlq.remove(connection, letter.id)
        return True
    finally:
        connection.delete(lock)


def replay(
    connection: redis.Redis,
    settings: Settings,
    ids: list[str] | None,
    *,
    progress: IO[str] | None = None,
    wait_s: float = 120.0,
    report: Callable[[str, int, int], None] | None = None,
    by: str = "cli",
) -> Summary:
    """Replay the given letters (all when `ids` is None), then wait for their entities.
    Interrupted (Ctrl-C), it stops where it is and the summary says so: every letter is
    either still in the DLQ or its entity is due. Each replayed letter stays on its
    entity's timeline with `by` (who replayed it) and its outcome."""
    wq = workqueue.WorkQueue.from_settings(connection, settings)
    wanted = dlq.ids(connection) if ids is None else ids
    summary = Summary(letters=len(wanted))
    started = workqueue.redis_ms(connection)
    me = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    user_handlers: handlers.Handlers | None = None
    replayed: list[tuple[dlq.DeadLetter, str | None]] = []  # (letter, outcome if known now)
    try:
        for n, dlq_id in enumerate(wanted, 1):
            if progress:
                progress.write(f"\rreplaying letter {n}/{len(wanted)}")
                progress.flush()
            if report:  # (phase, done, of)
                report("replaying", n - 1, len(wanted))
            letter = dlq.get(connection, dlq_id)
            if letter is None:
                summary.missing += 1
                continue
            try:
                if letter.reason == "handler" and letter.transition is not None:
                    user_handlers = user_handlers or handlers.load(settings.handlers)
                    if _run_handler(connection, letter, user_handlers, me):
                        summary.handlers_ok += 1
                        replayed.append((letter, "handler ran"))
                    else:
                        summary.handlers_failed += 1
                        replayed.append((letter, "handler failed"))
                    continue
                entity = wq.requeue(dlq_id, settings.inbox_ttl)
            except Taken:
                summary.taken += 1
                continue
            if entity is None:
                summary.missing += 1
                continue
            summary.requeued += 1
            summary.entities.add(entity)
            replayed.append((letter, None))
        if summary.entities:
            wq.kick()
        _wait(connection, wq, summary, started, wait_s, progress, report)
    except KeyboardInterrupt:
        summary.interrupted = True
    _remember(connection, settings, summary, replayed, by)
    if progress:
        progress.write("\n")
    return summary


def _remember(
    connection: redis.Redis,
    settings: Settings,
    summary: Summary,
    replayed: list[tuple[dlq.DeadLetter, str | None]],
    by: str,
) -> None:
    """Each replayed letter, on its entity's timeline, with who and what came of it."""
    now = datetime.now(UTC)
    by_entity: dict[str, list[dlq.Replayed]] = {}
    for letter, known in replayed:
        outcome = known or summary.outcome_of.get(letter.entity, "still pending")
        by_entity.setdefault(letter.entity, []).append(dlq.Replayed(
            letter=letter.id, at=now, by=by, error=letter.error, outcome=outcome))  # fmt: skip
    for entity, done in by_entity.items():
        dlq.remember_replays(connection, entity, done, settings.dlq_retention)


def _wait(
    connection: redis.Redis,
    wq: workqueue.WorkQueue,
    summary: Summary,
    started: int,
    wait_s: float,
    progress: IO[str] | None,
    report: Callable[[str, int, int], None] | None = None,
) -> None:
    waiting = sorted(summary.entities)
    deadline = time.monotonic() + wait_s
    while waiting and time.monotonic() < deadline:
        if progress:
            progress.write(f"\rwaiting for {len(waiting)} of {len(summary.entities)} entities ")
            progress.flush()
        if report:
            report("waiting", len(summary.entities) - len(waiting), len(summary.entities))
        time.sleep(0.2)
        waiting = wq.due_among(waiting)
    failed = {  # each entity's own letters: O(entities replayed), not the whole queue
        entity
        for entity in summary.entities
        if any(int(x.at.timestamp() * 1000) >= started for x in dlq.of_entity(connection, entity))
    }
    pending = set(waiting) - failed
    applied = summary.entities - failed - pending
    summary.failed_again = len(failed)
    summary.still_pending = len(pending)
    summary.applied = len(applied)
    named = (("applied", applied), ("dead-lettered again", failed), ("still pending", pending))
    summary.outcome_of = {e: name for name, found in named for e in found}
