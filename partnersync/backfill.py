"""Import what a partner already holds: its list endpoints, page by page, into the same
reconcile path as a webhook (each id listed is marked due; a worker GETs and stores it,
so a backfill never moves an entity backwards and runs beside live webhooks).

Each partner declares its `Listing`s (`Partner.listings`), parents before the listings
nested under them. A run is resumable: after each page its resume token is kept in
`ps:backfill:{partner}` and the ids it listed in a set per kind (what nested listings walk);
a run that ends deletes both, so the next starts over. Both expire after `_KEEP_S`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from partnersync import keys, replies, store
from partnersync.workqueue import WorkQueue

_KEEP_S = 7 * 86_400  # an interrupted run's progress is kept this long
_BATCH = 500  # ids marked due per round trip

# (the partner's client, the ids of the parent kind listed so far, the resume token or
# None) -> pages of (ids, the token that resumes after this page, None at the end)
Pages = Callable[[Any, Sequence[str], str | None], AsyncIterator[tuple[list[str], str | None]]]


@dataclass(frozen=True)
class Listing:
    kind: str  # the entity kind of the ids it lists
    name: str  # its resume token's name
    pages: Pages
    parent: str | None = None  # the kind whose listed ids it walks (its path needs one)


@dataclass
class Tally:
    """What a run did for one kind."""

    listed: int = 0
    new: int = 0  # not in the store when listed (it will be once reconciled)
    pages: int = 0
    resumed: bool = False


@dataclass
class Run:
    partner: str
    tallies: dict[str, Tally] = field(default_factory=dict)
    touched: list[str] = field(default_factory=list)  # the entity keys marked due


async def backfill(
    connection: redis.Redis,
    workqueue: WorkQueue,
    partner: str,
    client: Any,
    listings: Sequence[Listing],
    *,
    restart: bool = False,
    every: bool = False,
    progress: Callable[[str, Tally], None] = lambda kind, tally: None,
) -> Run:
    """List every entity of `listings` and mark the ones not stored due (`every`: all of
    them, which re-fetches the stored ones too); returns what was found."""
    state = keys.backfill(partner)
    if restart:
        connection.delete(state, *(keys.backfill_found(partner, x.kind) for x in listings))
    run = Run(partner)
    for listing in listings:
        tally = run.tallies.setdefault(listing.kind, Tally())
        resume = replies.optional_text(connection.hget(state, listing.name))
        if resume == "done":
            tally.resumed = True
            continue
        tally.resumed = resume is not None
        parents = (
            sorted(replies.texts(connection.smembers(keys.backfill_found(partner, listing.parent))))
            if listing.parent
            else []
        )
        async for ids, token in listing.pages(client, parents, resume):
            _take(connection, workqueue, run, partner, listing.kind, ids, tally, every)
            pipe = connection.pipeline(transaction=False)
            pipe.hset(state, listing.name, token if token is not None else "done")
            pipe.expire(state, _KEEP_S)
            pipe.execute()
            tally.pages += 1
            progress(listing.kind, tally)
    connection.delete(state, *(keys.backfill_found(partner, x.kind) for x in listings))
    return run


def _take(
    connection: redis.Redis,
    workqueue: WorkQueue,
    run: Run,
    partner: str,
    kind: str,
    ids: list[str],
    tally: Tally,
    every: bool,
) -> None:
    """Remember the ids (for nested listings) and mark the ones not stored yet due."""
    if not ids:
        return
    found = keys.backfill_found(partner, kind)
    pipe = connection.pipeline(transaction=False)
    pipe.sadd(found, *ids)
    pipe.expire(found, _KEEP_S)
    pipe.execute()
    entity_keys = [keys.entity_key(partner, kind, i) for i in ids]
    stored = store.load(connection, entity_keys)
    new = [k for k, record in zip(entity_keys, stored, strict=True) if record is None]
    due = entity_keys if every else new
    for start in range(0, len(due), _BATCH):
        workqueue.touch(due[start : start + _BATCH])
    tally.listed += len(ids)
    tally.new += len(new)
    run.touched += due
