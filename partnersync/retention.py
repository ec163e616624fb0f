"""Retention: nothing per entity stays for ever.

- An entity in a final state leaves Redis PARTNERSYNC_RETENTION_DAYS after its last change
  (the change stream is the hand-off to the user's system of record), leaving a tombstone
  (final status, modifiedOn) against which a late event is judged, and its externalId link.
- An entity resting in a status more could follow but rarely does (its kind's `resting`:
  a BOOKED transaction) leaves the same way PARTNERSYNC_RESTING_DAYS after its last change.
- The tombstone, the externalId link and the link to its command go
  PARTNERSYNC_TOMBSTONE_DAYS after the eviction; after that the id is unknown to
  partnersync (a late event for it is fetched from the partner like a new entity's).
- A finished command's journal record goes PARTNERSYNC_COMMAND_RETENTION_DAYS after it was
  submitted.

Each sweep reads only the oldest entries of the indexes involved: O(expired).
"""

from __future__ import annotations

import redis

from partnersync import commands, store, workqueue
from partnersync.partner import Catalog

BATCH = 500
BUDGET = 20_000  # entities per sweep at most: the clock's other tasks wait meanwhile


def sweep(
    connection: redis.Redis,
    catalog: Catalog,
    retention_days: float,
    tombstone_days: float | None = None,
    command_days: float | None = None,
    resting_days: float | None = None,
) -> int:
    """Evict final-state entities past retention (and resting ones past theirs), then forget
    tombstones and finished commands past theirs (when their lifetimes are given); returns
    how many entities left."""
    now = workqueue.redis_ms(connection)
    resting = now - int(resting_days * 86_400_000) if resting_days is not None else None
    evicted = _evict(connection, catalog, now - int(retention_days * 86_400_000), resting)
    if tombstone_days is not None:
        while store.forget(connection, now - int(tombstone_days * 86_400_000), BATCH) == BATCH:
            pass
    if command_days is not None:
        cutoff = now - int(command_days * 86_400_000)
        while commands.forget(connection, catalog, cutoff, BATCH) == BATCH:
            pass
    return evicted


def _evict(connection: redis.Redis, catalog: Catalog, final: int, resting: int | None) -> int:
    evicted = 0
    for (partner, kind_name, status), n in sorted(store.counts(connection).items()):
        kind = catalog.kinds.get((partner, kind_name))
        if n <= 0 or kind is None:
            continue
        if kind.lifecycle.terminal(status):
            cutoff = final
        elif status in kind.resting and resting is not None:
            cutoff = resting
        else:
            continue  # live: nothing says it is done
        while evicted < BUDGET:
            ids = store.oldest(connection, partner, kind_name, status, cutoff, BATCH)
            gone = store.evict(connection, partner, kind_name, status, ids, cutoff)
            evicted += gone
            if len(ids) < BATCH or not gone:  # done, or what is left is being reconciled
                break
    return evicted
