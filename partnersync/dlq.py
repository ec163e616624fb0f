"""The dead-letter queue: events that could not be applied, with the reason, kept for
`PARTNERSYNC_DLQ_RETENTION` seconds. Replay puts them back through reconciliation."""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import redis

from partnersync import keys, paging, replies
from schemas.store import Transition


class DeadEvent(msgspec.Struct, kw_only=True):
    deliveryId: str
    type: str | None = None
    body: str | None = None  # the raw delivery (the inbox copy expires before the DLQ's)

    @classmethod
    def of(cls, delivery_id: str, type: str | None, body: bytes | None) -> DeadEvent:
        return cls(
            deliveryId=delivery_id,
            type=type,
            body=body.decode("utf-8", "replace") if body is not None else None,
        )


class DeadLetter(msgspec.Struct, kw_only=True):
    id: str
    at: datetime
    reason: str  # "reconcile" (events not applied) or "handler" (a user handler failed)
    entity: str
    error: str
    traceback: str
    attempts: int
    events: list[DeadEvent] = []
    transition: Transition | None = None


_decoder = msgspec.json.Decoder(DeadLetter)


def add(pipe: redis.client.Pipeline, letter: DeadLetter, retention: int) -> None:
    at_ms = int(letter.at.timestamp() * 1000)
    pipe.set(keys.dead_letter(letter.id), msgspec.json.encode(letter), ex=retention)
    pipe.zadd(keys.DLQ, {letter.id: at_ms})
    pipe.zadd(keys.dead_letters_of(letter.entity), {letter.id: at_ms})
    pipe.expire(keys.dead_letters_of(letter.entity), retention)


def dead_letter(
    pipe: redis.client.Pipeline,
    entity: str,
    exc: BaseException,
    attempts: int,
    now: datetime,
    retention: int,
    *,
    reason: str = "reconcile",
    events: list[DeadEvent] | None = None,
    transition: Transition | None = None,
) -> None:
    """Queue on `pipe` a letter with the exception, its traceback and the events."""
    letter = DeadLetter(
        id=f"{int(time.time() * 1000):013d}-{random.getrandbits(32):08x}",
        at=now,
        reason=reason,
        entity=entity,
        error=f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(exc)),
        attempts=attempts,
        events=events or [],
        transition=transition,
    )
    add(pipe, letter, retention)


def get(connection: redis.Redis, dlq_id: str) -> DeadLetter | None:
    raw = connection.get(keys.dead_letter(dlq_id))
    return None if raw is None else _decoder.decode(raw)


def ids(connection: redis.Redis) -> list[str]:
    return replies.texts(connection.zrange(keys.DLQ, 0, -1))


def all_letters(connection: redis.Redis) -> list[DeadLetter]:
    """Every live letter; ids whose letter expired are pruned from the index."""
    out: list[DeadLetter] = []
    expired: list[str] = []
    letter_ids = ids(connection)
    raws = connection.mget([keys.dead_letter(i) for i in letter_ids]) if letter_ids else []
    for dlq_id, raw in zip(letter_ids, raws, strict=True):
        (out.append(_decoder.decode(raw)) if raw is not None else expired.append(dlq_id))
    if expired:
        connection.zrem(keys.DLQ, *expired)
    return out


class Replayed(msgspec.Struct, kw_only=True):
    """A dead letter that was replayed: kept on its entity's timeline after it left the
    queue, with who replayed it and what came of it."""

    letter: str
    at: datetime
    by: str
    error: str  # why it had been dead-lettered
    outcome: str  # applied | dead-lettered again | still pending | handler ran | handler failed


def remember_replays(
    connection: redis.Redis, entity: str, replayed: list[Replayed], retention: int
) -> None:
    pipe = connection.pipeline(transaction=False)
    where = keys.replays_of(entity)
    pipe.lpush(where, *(msgspec.json.encode(r) for r in replayed))
    pipe.ltrim(where, 0, 49)
    pipe.expire(where, retention)
    pipe.execute()


def replays_of(connection: redis.Redis, entity: str) -> list[Replayed]:
    raws: Any = connection.lrange(keys.replays_of(entity), 0, -1)
    return [_replayed.decode(raw) for raw in raws]


_replayed = msgspec.json.Decoder(Replayed)


@dataclass
class Page:
    letters: list[DeadLetter]
    next: paging.Cursor | None  # None: no older letter is left to look at
    total: int  # letters in the queue


def page(
    connection: redis.Redis,
    chosen: Filter,
    *,
    limit: int = 50,
    cursor: paging.Cursor | None = None,
    budget: int = 1000,
) -> Page:
    """The newest letters matching `chosen` after `cursor`: read `limit` at a time until
    `limit` match or `budget` letters were read (a filter that matches few stops there; its
    cursor goes on from the last letter read). `since` bounds the read by score."""
    low = int(chosen.since.timestamp() * 1000) if chosen.since else 0
    found: list[DeadLetter] = []
    read, last, more = 0, cursor, True
    while more and len(found) < limit and read < budget:
        shown, more = paging.newest(connection, [paging.Index(keys.DLQ)], high=2**62, low=low,
                                    limit=min(limit, budget - read), cursor=last)  # fmt: skip
        raws = connection.mget([keys.dead_letter(i) for _, i in shown]) if shown else []
        expired = []
        for n, ((ms, dlq_id), raw) in enumerate(zip(shown, raws, strict=True)):
            read += 1
            last = paging.Cursor(ms, dlq_id)
            if raw is None:
                expired.append(dlq_id)
            elif chosen.matches(letter := _decoder.decode(raw)):
                found.append(letter)
            if len(found) == limit:
                more = more or n < len(shown) - 1
                break
        if expired:
            connection.zrem(keys.DLQ, *expired)
    return Page(found, last if more else None, int(connection.zcard(keys.DLQ)))


# why letters are dead: events not applied, a handler failed, a command crashed, a
# partner's recovery item not understood
REASONS = ("reconcile", "handler", "command", "recovery")


def known_kinds(partners: Iterable[str], kinds: Iterable[tuple[str, str]]) -> set[str]:
    """The kinds a filter may name: each entity kind, bare and as partner:kind, and the
    dead letters' own (a command's, a recovery item's)."""
    out = {"command", "recovery"}
    for partner, kind in kinds:
        out |= {kind, f"{partner}:{kind}"}
    for partner in partners:
        out |= {f"{partner}:command", f"{partner}:recovery"}
    return out


class Filter(msgspec.Struct, kw_only=True):
    """Which letters a listing or a replay selects; every given field must match."""

    kind: str | None = None  # entity kind (`transfer`) or partner:kind (`saxo:cash-transfer`)
    error: str | None = None  # substring of the error, case-insensitive
    since: datetime | None = None
    reason: str | None = None  # reconcile | handler | command

    def checked(self, kinds: Iterable[str]) -> Filter:
        """Itself, if it names a kind partnersync has (`kinds`, as entity kinds and as
        partner:kind) and a reason letters carry; else a ValueError naming the known ones
        (an unknown one would select nothing, silently)."""
        known = set(kinds)
        if self.kind and self.kind not in known:
            bare = sorted({k for k in known if ":" not in k})
            raise ValueError(f"unknown kind {self.kind!r}; known: {', '.join(bare)}")
        if self.reason and self.reason not in REASONS:
            raise ValueError(f"unknown reason {self.reason!r}; known: {', '.join(REASONS)}")
        return self

    def matches(self, letter: DeadLetter) -> bool:
        partner, kind, _ = letter.entity.split(":", 2)
        if self.kind and self.kind not in (kind, f"{partner}:{kind}"):
            return False
        if self.error and self.error.lower() not in letter.error.lower():
            return False
        if self.since and letter.at < self.since:
            return False
        return not (self.reason and letter.reason != self.reason)


def parse_since(text: str, now: datetime) -> datetime:
    """`30m`, `2h`, `7d`, or an ISO date-time."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        from datetime import timedelta

        return now - timedelta(seconds=float(text[:-1]) * units[text[-1]])
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)


def parse_filter(text: str, now: datetime) -> Filter:
    """`kind=transfer,error=404,since=2h,reason=reconcile`."""
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name not in ("kind", "error", "since", "reason"):
            raise ValueError(f"bad filter {part!r}: use kind=, error=, since=, reason=")
        values[name] = parse_since(value, now) if name == "since" else value
    return Filter(**values)


def of_entity(connection: redis.Redis, entity_key: str) -> list[DeadLetter]:
    """An entity's live letters, oldest first (replayed or expired ones are pruned)."""
    index = keys.dead_letters_of(entity_key)
    letter_ids = replies.texts(connection.zrange(index, 0, -1))
    raws = connection.mget([keys.dead_letter(i) for i in letter_ids]) if letter_ids else []
    gone = [i for i, raw in zip(letter_ids, raws, strict=True) if raw is None]
    if gone:
        connection.zrem(index, *gone)
    return [_decoder.decode(raw) for raw in raws if raw is not None]


def take(pipe: redis.client.Pipeline, dlq_id: str) -> None:
    """Queue on `pipe` the letter's removal (a replay's requeue, in its MULTI)."""
    pipe.delete(keys.dead_letter(dlq_id))
    pipe.zrem(keys.DLQ, dlq_id)


def remove(connection: redis.Redis, *dlq_ids: str) -> None:
    if not dlq_ids:
        return
    pipe = connection.pipeline()
    pipe.delete(*(keys.dead_letter(i) for i in dlq_ids))
    pipe.zrem(keys.DLQ, *dlq_ids)
    pipe.execute()
