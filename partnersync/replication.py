"""Writes confirmed on replicas before anything that depends on them happens (WAIT).

Redis replicates asynchronously: a write answered by the primary can vanish in a failover.
With `PARTNERSYNC_MIN_REPLICAS=N`, a write that a partner call or an acknowledgement rests
on is confirmed on N replicas first; a write that cannot be confirmed in time stops what
depended on it (no 2xx, no send), it never proceeds on hope.

WAIT counts the writes of the connection it is sent on. The write to be confirmed may
have gone over another pooled connection (a Lua script, a MULTI/EXEC), so `confirm`
writes a mark on its own connection first: Redis runs one command at a time, so the mark
comes after every write already answered, and replicas that hold the mark hold those.
"""

from __future__ import annotations

import time

import redis
from redis.exceptions import RedisError

from partnersync import keys


class NotReplicated(RedisError):
    """Fewer than PARTNERSYNC_MIN_REPLICAS replicas confirmed a write in time: it is on the
    primary only, and a failover now could lose it."""


def confirm(connection: redis.Redis, replicas: int, timeout_ms: int) -> int:
    """Block until `replicas` replicas hold every write this process has had answered;
    the count that did (NotReplicated when fewer did within `timeout_ms`)."""
    if replicas <= 0:
        return 0
    pipe = connection.pipeline(transaction=False)
    pipe.set(keys.REPLICATION_MARK, int(time.time() * 1000), px=60_000)
    pipe.execute_command("WAIT", replicas, timeout_ms)
    _, acknowledged = pipe.execute()
    if int(acknowledged) < replicas:
        raise NotReplicated(f"{acknowledged} of {replicas} replicas within {timeout_ms} ms")
    return int(acknowledged)
