"""One entity's whole story, merged in time order: the deliveries that named it (inbox), its
transitions with their decision, the command that created it (each attempt and its
outcome), its dead letters and failed handlers, and those replayed (who, what came of it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from partnersync import commands, dlq, inbox, keys, replies, store
from schemas.commands import CommandRecord

MAX_DELIVERIES = 200  # the newest transitions' sources, at most (one HMGET each)


@dataclass(frozen=True)
class Entry:
    at: datetime
    what: str  # delivery | transition | command | dead-letter | handler | replayed
    title: str
    detail: str = ""
    ref: str = ""  # a delivery id, an externalId or a dead-letter id


@dataclass
class Story:
    stored: store.Stored | None
    command: CommandRecord | None
    entries: list[Entry]


def story(connection: redis.Redis, key: str) -> Story:
    stored = store.read(connection, [key])[0]
    history = stored.history if stored else []
    entries = [
        Entry(
            t.at,
            "transition",
            f"{t.from_ or '∅'} → {t.to}",
            f"{t.decision}; modifiedOn {t.modifiedOn.isoformat() if t.modifiedOn else '—'}; "
            f"{len(t.source)} event(s)",
        )  # fmt: skip
        for t in history
    ]
    sources = list(dict.fromkeys(d for t in reversed(history) for d in t.source))
    sources = sources[:MAX_DELIVERIES]
    pipe = connection.pipeline(transaction=False)
    inbox.queue_read(pipe, sources)
    pipe.hget(*keys.command_link(key))
    pipe.get(keys.older_command_link(key))
    got: Any = pipe.execute()
    older = got.pop()
    link = got.pop() or older
    for delivery, record in zip(sources, inbox.records(sources, got), strict=True):
        if record.received_ms:
            at = datetime.fromtimestamp(record.received_ms / 1000, UTC)
            entries.append(Entry(at, "delivery", record.type or "?", "", delivery))
    command = commands.load(connection, replies.text(link)) if link else None
    if command is not None:
        entries.append(Entry(command.createdAt, "command", f"{command.kind} submitted",
                             f"state now {command.state}", command.externalId))  # fmt: skip
        entries += [
            Entry(a.at, "command", f"{a.action}: {a.outcome}", "", command.externalId)
            for a in command.history
        ]
    for done in dlq.replays_of(connection, key):  # letters that left the queue, replayed
        entries.append(Entry(done.at, "replayed", f"dead letter replayed by {done.by}",
                             f"{done.outcome} (it had failed: {done.error})", done.letter))  # fmt: skip
    for letter in dlq.of_entity(connection, key):
        what = "handler" if letter.reason == "handler" else "dead-letter"
        entries.append(Entry(letter.at, what, letter.error, f"{letter.attempts} attempt(s)",
                             letter.id))  # fmt: skip
    entries.sort(key=lambda e: e.at)
    return Story(stored, command, entries)
