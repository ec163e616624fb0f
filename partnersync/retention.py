"""Retention: an entity in a final state leaves Redis PARTNERSYNC_RETENTION_DAYS after its
last change. The change stream is the hand-off to the user's system of record; what must
outlive an entity stays: its externalId link, its command's outcome, and a tombstone (final
status, modifiedOn) against which a late event is judged.

Each sweep reads only the oldest entries of final statuses' indexes: O(expired).
"""

from __future__ import annotations

import redis

from partnersync import store, workqueue
from partnersync.partner import Catalog

BATCH = 500
BUDGET = 20_000  # entities per sweep at most: the clock's other tasks wait meanwhile


def sweep(connection: redis.Redis, catalog: Catalog, retention_days: float) -> int:
    """Evict final-state entities past retention; returns how many left."""
    cutoff = workqueue.redis_ms(connection) - int(retention_days * 86_400_000)
    evicted = 0
    for (partner, kind_name, status), n in sorted(store.counts(connection).items()):
        kind = catalog.kinds.get((partner, kind_name))
        if n <= 0 or kind is None or not kind.lifecycle.terminal(status):
            continue  # kinds without a final state are kept (nothing says they are done)
        while evicted < BUDGET:
            ids = store.oldest(connection, partner, kind_name, status, cutoff, BATCH)
            gone = store.evict(connection, partner, kind_name, status, ids, cutoff)
            evicted += gone
            if len(ids) < BATCH or not gone:  # done, or what is left is being reconciled
                break
    return evicted
