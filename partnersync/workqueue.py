"""Work keyed by entity: the dirty set, entity leases, and the drain jobs that empty it.

An accepted event is recorded in one atomic step (one Redis round trip, a Lua script):
dedupe key, raw delivery in the inbox, the event id appended to its entity's event list,
the entity marked due in the dirty set, and — when fewer than `drainers` drain jobs are
live — an RQ job enqueued, written in RQ's own job format from a template.

Why not one RQ job per event: a burst of events for one entity coalesces into one entry in
the dirty set (one partner GET), and a drain job reconciles many entities per claim.

Crash safety: a claim leases each entity (SET NX PX) and parks it in the dirty set at the
lease's expiry instead of removing it, and leaves its events in place. Only `complete`
trims the events it processed. A worker that dies therefore leaves its entities due again
after the lease expires; the clock's `kick` starts a drain job for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import redis

from partnersync import dlq, failpoints, inbox, keys, rqbridge
from partnersync.config import Settings

T = TypeVar("T")

DRAIN_FUNC = rqbridge.DRAIN_FUNC
MAX_EVENTS = 1000  # events of one entity taken by one claim (bounded memory per batch)
_LUA = Path(__file__).parent / "lua"


def lua(name: str, *, drainer: bool = False) -> str:
    """A script from lua/, after the shared clock (and the drain-job enqueue, where it may
    start one). Each file documents its KEYS and ARGV at the top."""
    parts = ["clock.lua", *(["drainer.lua"] if drainer else []), name]
    return "\n".join((_LUA / part).read_text() for part in parts)


INTAKE = lua("intake.lua", drainer=True)
KICK = lua("kick.lua", drainer=True)
TOUCH = lua("touch.lua", drainer=True)
CLAIM = lua("claim.lua")
COMPLETE = lua("complete.lua")
FENCED_SET = lua("fenced_set.lua")

install_template = rqbridge.install_template
rq_now = rqbridge.rq_now


def now_ms() -> int:
    """This process's wall clock: for what is shown (RQ's timestamps, ids), never for a
    comparison with a time another process set (use `redis_ms`)."""
    return int(time.time() * 1000)


def crashes(claims: Sequence[bytes | str | None]) -> list[int]:
    """Per entity: attempts in a row that never completed (claims since the last COMPLETE,
    less the current one)."""
    return [max(0, int(c or 1) - 1) for c in claims]


def redis_ms(connection: redis.Redis) -> int:
    """Redis's clock, the one every process compares due times and scores against."""
    seconds, micros = connection.time()
    return seconds * 1000 + micros // 1000


@dataclass(frozen=True)
class Delivery:
    """One partner event to take in (a webhook, a recovered notification, an activity):
    what the intake script archives, deduplicates and makes due."""

    event_type: str
    body: bytes
    entities: Sequence[str]
    dedupe_key: str = ""  # keys.dedupe(...) or '' for none
    label: str | None = None  # its name in the counters (None: its type); bounded by the caller
    headers: Sequence[tuple[str, str]] = ()  # the request's, as inbox.kept_headers keeps them


def intake_call(
    events: Sequence[Delivery],
    *,
    dedupe_ttl: int,
    inbox_ttl: int,
    cap: int,
    queue: str,
    source: str = "",
    reserve_ms: int = 60_000,
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of lua/intake.lua for a batch of events."""
    script_keys = [
        *rqbridge.drainer_keys(queue),
        keys.COUNTERS,
        keys.LAST_DELIVERY,
        keys.INBOX_BLOCKS,
        keys.events(""),
        keys.cool(""),
        keys.inbox_block(""),
        keys.resends(""),
        *(e.dedupe_key for e in events),
    ]
    args: list[Any] = [
        dedupe_ttl,
        inbox_ttl,
        rq_now(now_ms()),  # RQ's enqueued_at: shown, never compared
        cap,
        reserve_ms,
        source,
        len(events),
    ]
    for e in events:
        record = inbox.encode(e.event_type, e.entities, e.body)
        headers = inbox.encode_headers(e.headers)
        args += [e.label or e.event_type, record, headers, len(e.entities), *e.entities]
    return script_keys, args


def intake_replies(reply: list[Any]) -> tuple[list[tuple[bool, str]], Any]:
    """[(accepted, delivery id), ...] and the drainer result."""
    pairs = [
        (bool(reply[i]), reply[i + 1].decode() if isinstance(reply[i + 1], bytes) else reply[i + 1])
        for i in range(0, len(reply) - 1, 2)
    ]
    return pairs, reply[-1]


class Taken(Exception):
    """Another replayer took this dead letter first."""


class WorkQueue:
    """The synchronous side (jobs, clock, CLI) of the dirty set and its drain jobs.

    The one writer of its keys (an entity's event list, attempts, lease, the dirty set, the
    drainer slots): intake, claim, complete, kick, touch and a replay's requeue."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        queue: str,
        drainers: int,
        lease_ms: int,
        cooldown_ms: int = 0,
    ):
        self.connection = connection
        self.cooldown_ms = cooldown_ms
        self.queue = queue
        self.drainers = drainers
        self.lease_ms = lease_ms
        self._kick = connection.register_script(KICK)
        self._claim = connection.register_script(CLAIM)
        self._complete = connection.register_script(COMPLETE)
        self._touch = connection.register_script(TOUCH)
        self._intake = connection.register_script(INTAKE)
        self._fenced_set = connection.register_script(FENCED_SET)
        self._drainer_keys = rqbridge.drainer_keys(queue)

    def fenced_set(
        self, entity: str, me: str, where: tuple[str, str], value: bytes, older: str
    ) -> Any:
        """HSET `where` (hash, field) to value if `me` still holds `entity`'s lease (1), else
        nothing (0); `older`, the value's key of its own in an older store, goes."""
        hash, name = where
        return self._fenced_set(
            keys=[keys.lease(entity), hash, older], args=[me, name, value],
            client=self.connection,
        )  # fmt: skip

    def requeue(self, dlq_id: str, inbox_ttl: int) -> str | None:
        """Atomically take dead letter `dlq_id` out of the DLQ and put its events back on
        its entity, due now: the entity, or None if the letter is gone; raises Taken if
        another replayer won (WATCH on the letter: the second EXEC fails)."""
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.watch(keys.dead_letter(dlq_id))
            letter = dlq.get(pipe, dlq_id)
            if letter is None:
                return None
            clock = redis_ms(pipe)
            failpoints.hit("replay.claimed")
            pipe.multi()
            for event in letter.events:
                body = (event.body or "").encode()
                record = inbox.Record(event.type, body, clock, (letter.entity,))
                inbox.write(pipe, event.deliveryId, record, inbox_ttl)
                pipe.rpush(keys.events(letter.entity), event.deliveryId)
            pipe.delete(keys.attempts(letter.entity))
            pipe.zadd(keys.DIRTY, {letter.entity: clock}, lt=True)
            dlq.take(pipe, dlq_id)
            try:
                pipe.execute()
            except redis.WatchError:
                raise Taken(dlq_id) from None
        return letter.entity

    def due_among(self, entities: Sequence[str]) -> list[str]:
        """Those of `entities` still due (in the dirty set)."""
        pipe = self.connection.pipeline(transaction=False)
        for entity in entities:
            pipe.zscore(keys.DIRTY, entity)
        return [e for e, score in zip(entities, pipe.execute(), strict=True) if score is not None]

    @classmethod
    def from_settings(cls, connection: redis.Redis, settings: Settings) -> WorkQueue:
        return cls(
            connection,
            queue=settings.queue,
            drainers=settings.drainers,
            lease_ms=settings.lease_ms,
            cooldown_ms=settings.coalesce_ms,
        )

    def _ensure_template(self, result: Any) -> bool:
        """True when a script reported the template missing (now installed: run again)."""
        if result != b"notpl":
            return False
        install_template(self.connection, self.queue)
        return True

    def intake(
        self, event: Delivery, *, dedupe_ttl: int, inbox_ttl: int, source: str = "recovered-"
    ) -> bool:
        """The receiver's intake, for events that arrive by polling (sweepers, pollers);
        `source` prefixes their counters."""
        script_keys, args = intake_call(
            [event],
            dedupe_ttl=dedupe_ttl,
            inbox_ttl=inbox_ttl,
            cap=self.drainers,
            queue=self.queue,
            source=source,
        )
        ((accepted, _),), drainer = intake_replies(self._intake(keys=script_keys, args=args))
        if self._ensure_template(drainer):
            self.kick()
        return accepted

    def kick(self, *, force: bool = False, reserve_ms: int = 60_000) -> str | None:
        args: list[Any] = [rq_now(now_ms()), self.drainers, reserve_ms, int(force)]
        job_id = self._kick(keys=self._drainer_keys, args=args)
        if self._ensure_template(job_id):
            job_id = self._kick(keys=self._drainer_keys, args=args)
        return job_id.decode() if job_id else None

    def touch(self, entities: Sequence[str], reserve_ms: int = 60_000) -> str | None:
        args: list[Any] = [len(entities), *entities, rq_now(now_ms()), self.drainers, reserve_ms]
        job_id = self._touch(keys=self._drainer_keys, args=args)
        if self._ensure_template(job_id):
            job_id = self.kick(reserve_ms=reserve_ms)
            return job_id
        return job_id.decode() if job_id else None

    def touch_on(self, pipe: redis.client.Pipeline, entities: Sequence[str]) -> None:
        """`touch`, queued on a pipeline (a drain job is running: the template is there)."""
        args: list[Any] = [len(entities), *entities, rq_now(now_ms()), self.drainers, 60_000]
        self._touch(keys=self._drainer_keys, args=args, client=pipe)

    def fenced(
        self,
        me: str,
        entities: Sequence[str],
        queue: Callable[[redis.client.Pipeline, list[bool], int], T],
        failpoint: str = "",
    ) -> T:
        """Write what `queue(pipe, held, clock_ms)` queues in one MULTI/EXEC conditioned on
        the leases of `entities`: WATCH them, tell `queue` which `me` still holds (it writes
        only for those) and Redis's time. A lease that expires or is taken over before EXEC
        (a paused worker, a successor's claim) aborts it, and it is queued again."""
        lease_keys = [keys.lease(e) for e in entities]
        while True:
            with self.connection.pipeline(transaction=True) as pipe:
                pipe.watch(*lease_keys)
                held = [owner == me.encode() for owner in pipe.mget(lease_keys)]
                clock = redis_ms(pipe)
                if failpoint:
                    failpoints.hit(failpoint)
                pipe.multi()
                result = queue(pipe, held, clock)
                try:
                    pipe.execute()
                except redis.WatchError:
                    continue
            return result

    def release(self, me: str) -> None:
        self.connection.zrem(keys.DRAINERS, me)

    def claim(self, me: str, batch: int) -> list[tuple[str, list[str]]]:
        flat = self._claim(
            keys=[keys.DIRTY, keys.DRAINERS, keys.lease(""), keys.claims(""), keys.events("")],
            args=[me, batch, self.lease_ms, self.lease_ms * 2, MAX_EVENTS],
        )
        return [
            (flat[i].decode(), [d.decode() for d in flat[i + 1]]) for i in range(0, len(flat), 2)
        ]

    def bury(
        self,
        pipe: redis.client.Pipeline,
        entity: str,
        me: str,
        exc: BaseException,
        attempts: int,
        now: datetime,
        *,
        retention: int,
        events: list[dlq.DeadEvent] | None = None,
        reason: str = "reconcile",
    ) -> None:
        """Queue on `pipe` the dead letter of `entity`'s work (with its events, which leave
        the entity's list) and its release: it is done until a replay puts it back."""
        dlq.dead_letter(pipe, entity, exc, attempts, now, retention, reason=reason, events=events)
        self.complete(pipe, entity, me, len(events or ()), "dead")

    def complete(
        self,
        pipe: redis.client.Pipeline,
        entity: str,
        me: str,
        n_done: int,
        outcome: str,
        delay_ms: int = 0,
    ) -> None:
        """Release `entity` (outcome 'retry'/'poll': due again `delay_ms` from now, by
        Redis's clock)."""
        entity_keys = [
            keys.DIRTY,
            keys.lease(entity),
            keys.events(entity),
            keys.attempts(entity),
            keys.cool(entity),
            keys.claims(entity),
        ]
        args: list[Any] = [entity, me, n_done, outcome, delay_ms, self.cooldown_ms]
        self._complete(keys=entity_keys, args=args, client=pipe)
