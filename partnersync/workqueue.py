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
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from partnersync import failpoints, keys
from partnersync.config import Settings

T = TypeVar("T")

DRAIN_FUNC = "jobs.drain.drain"
MAX_EVENTS = 1000  # events of one entity taken by one claim (bounded memory per batch)
_NOW = "\x00now"  # placeholder for RQ's created_at / enqueued_at in the job template

# Shared Lua: enqueue a drain job when fewer than `cap` are live, from the job template
# kept in Redis (`install_template`); 'notpl' when it is missing (the caller installs it
# and kicks).
_ENSURE_DRAINER = """
local function ensure_drainer(now_ms, now_iso, cap, reserve_ms, queue)
  redis.call('ZREMRANGEBYSCORE', KEYS_DRAINERS, '-inf', now_ms)
  if redis.call('ZCARD', KEYS_DRAINERS) >= cap then return false end
  local tpl = redis.call('LRANGE', P .. 'rq-template:' .. queue, 0, -1)
  if #tpl == 0 then return 'notpl' end
  local id = 'drain-' .. redis.call('INCR', KEYS_SEQ)
  redis.call('ZADD', KEYS_DRAINERS, now_ms + reserve_ms, id)
  local fields = {}
  for i = 1, #tpl do
    local v = tpl[i]
    if v == NOW then v = now_iso end
    fields[i] = v
  end
  redis.call('HSET', 'rq:job:' .. id, unpack(fields))
  redis.call('SADD', 'rq:queues', 'rq:queue:' .. queue)
  redis.call('RPUSH', 'rq:queue:' .. queue, id)
  return id
end
"""


def _lua(body: str) -> str:
    prelude = (
        f"local P = {keys.PREFIX!r}\n"
        f"local KEYS_DIRTY = {keys.DIRTY!r}\n"
        f"local KEYS_DRAINERS = {keys.DRAINERS!r}\n"
        f"local KEYS_SEQ = {keys.SEQ!r}\n"
        f"local KEYS_LAST = {keys.LAST_DELIVERY!r}\n"
        f"local KEYS_COUNTERS = {keys.COUNTERS!r}\n"
        f"local NOW = '\\0now'\n"
    )
    return prelude + _NOW_MS + _ENSURE_DRAINER + body


# One clock: every due time, lease and expiry is Redis's own (TIME), never a process's
# wall clock, so a worker whose clock is off neither delays work nor starts idle jobs.
# (Effects replication, the default since Redis 5, lets a script write after TIME.)
_NOW_MS = """
local function clock_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""


# Accept a batch of events (group commit: the receiver's requests of one moment).
# ARGV: dedupe_ttl, inbox_ttl, now_iso, cap, reserve_ms, queue, source, n_events,
#       then per event: dedupe_key ('' = none), event_type, body, n_entities, entity keys...
# `source` prefixes the counters: '' for deliveries, 'recovered-' for sweeper ingestion.
# Returns {accepted_1, delivery_id_1, ..., accepted_n, delivery_id_n, drainer}: accepted is
# 1, or 0 for a duplicate (with the original delivery's id); drainer is 'notpl' when the
# job template must be installed.
INTAKE = _lua("""
local dedupe_ttl, inbox_ttl, now_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), clock_ms()
local now_iso, cap, reserve_ms, queue = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local source, n_events = ARGV[7], tonumber(ARGV[8])
local out = {}
local i = 9
local wake = false
local counts, last = {}, {}  -- written once per batch, not per event
for _ = 1, n_events do
  local dedupe_key, event_type, body, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local first = i + 4
  i = first + n
  local seen = dedupe_key ~= '' and redis.call('GET', dedupe_key)
  if seen then
    local c = source .. 'duplicate:' .. event_type
    counts[c] = (counts[c] or 0) + 1
    out[#out + 1] = 0
    out[#out + 1] = seen
  else
    local delivery_id = string.format('%013d-%d', now_ms, redis.call('INCR', KEYS_SEQ))
    if dedupe_key ~= '' then redis.call('SET', dedupe_key, delivery_id, 'EX', dedupe_ttl) end
    local entities = {}
    for k = 1, n do entities[k] = ARGV[first + k - 1] end
    local inbox = P .. 'inbox:' .. delivery_id
    redis.call('HSET', inbox, 'body', body, 'type', event_type, 'receivedAt', now_ms,
               'entities', table.concat(entities, ' '))
    redis.call('EXPIRE', inbox, inbox_ttl)
    for k = 1, n do
      local e = entities[k]
      redis.call('RPUSH', P .. 'events:' .. e, delivery_id)
      -- reconciled moments ago: wait out the cooldown so a burst costs one more GET, not many
      local cool = redis.call('PTTL', P .. 'cool:' .. e)
      redis.call('ZADD', KEYS_DIRTY, 'LT', cool > 0 and now_ms + cool or now_ms, e)
    end
    if source == '' then last[event_type] = now_ms end
    local c = source .. (n > 0 and 'accepted:' or 'parked:') .. event_type
    counts[c] = (counts[c] or 0) + 1
    if n > 0 then wake = true end
    out[#out + 1] = 1
    out[#out + 1] = delivery_id
  end
end
for c, k in pairs(counts) do redis.call('HINCRBY', KEYS_COUNTERS, c, k) end
for t, ms in pairs(last) do redis.call('HSET', KEYS_LAST, t, ms) end
out[#out + 1] = wake and ensure_drainer(now_ms, now_iso, cap, reserve_ms, queue) or false
return out
""")

# ARGV: now_iso, cap, reserve_ms, queue, force(0|1)
# Starts a drain job if an entity is due (or `force`) and fewer than `cap` are live.
KICK = _lua("""
local now_ms, now_iso, cap, reserve_ms, queue = clock_ms(), ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
if ARGV[5] ~= '1' and #redis.call('ZRANGEBYSCORE', KEYS_DIRTY, '-inf', now_ms, 'LIMIT', 0, 1) == 0 then
  return false
end
return ensure_drainer(now_ms, now_iso, cap, reserve_ms, queue)
""")

# ARGV: me (drain job id), batch, lease_ms, drainer_ttl_ms, max_events
# Returns a flat list {entity, {delivery ids...}, ...}, at most max_events ids an entity
# (the rest wait for the next claim: a worker's memory stays bounded); an empty list means
# nothing is claimable, and the drainer has been deregistered in the same step (so an
# event that arrives right after sees fewer live drainers and starts one). Each claim is
# counted (claims:<entity>) until COMPLETE: a count above 1 at claim time is an attempt
# that crashed or lost its lease.
CLAIM = _lua("""
local me, now_ms, batch = ARGV[1], clock_ms(), tonumber(ARGV[2])
local lease_ms, drainer_ttl, max_events = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local due = redis.call('ZRANGEBYSCORE', KEYS_DIRTY, '-inf', now_ms, 'LIMIT', 0, batch * 4)
local out = {}
local claimed = 0
for _, e in ipairs(due) do
  if claimed >= batch then break end
  if redis.call('SET', P .. 'lease:' .. e, me, 'NX', 'PX', lease_ms) then
    redis.call('INCR', P .. 'claims:' .. e)
    out[#out + 1] = e
    out[#out + 1] = redis.call('LRANGE', P .. 'events:' .. e, 0, max_events - 1)
    redis.call('ZADD', KEYS_DIRTY, now_ms + lease_ms, e)
    claimed = claimed + 1
  end
end
if claimed == 0 then
  redis.call('ZREM', KEYS_DRAINERS, me)
else
  redis.call('ZADD', KEYS_DRAINERS, now_ms + drainer_ttl, me)
end
return out
""")

# ARGV: entity, me, n_done, outcome ('ok'|'retry'|'poll'|'dead'), delay_ms (retry, poll: due
#       this long from now), cooldown_ms (after a reconcile, further events wait this long)
# Returns 1 when this job still held the lease, else 0 (nothing changed).
COMPLETE = _lua("""
local e, me, n_done, outcome = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local now_ms, cooldown = clock_ms(), tonumber(ARGV[6])
local due_ms = now_ms + tonumber(ARGV[5])
local lease = P .. 'lease:' .. e
if redis.call('GET', lease) ~= me then return 0 end
local events = P .. 'events:' .. e
if outcome == 'retry' then
  redis.call('INCR', P .. 'attempts:' .. e)
  redis.call('ZADD', KEYS_DIRTY, due_ms, e)
elseif outcome == 'poll' then
  -- a polled entity in a non-terminal state: look again at due_ms (now if events wait)
  if n_done > 0 then redis.call('LTRIM', events, n_done, -1) end
  redis.call('DEL', P .. 'attempts:' .. e)
  if redis.call('LLEN', events) > 0 then due_ms = now_ms + cooldown end
  redis.call('ZADD', KEYS_DIRTY, due_ms, e)
else
  if n_done > 0 then redis.call('LTRIM', events, n_done, -1) end
  redis.call('DEL', P .. 'attempts:' .. e)
  if redis.call('LLEN', events) == 0 then
    redis.call('ZREM', KEYS_DIRTY, e)
  else
    redis.call('ZADD', KEYS_DIRTY, now_ms + cooldown, e)
  end
end
if cooldown > 0 and outcome ~= 'retry' then
  redis.call('SET', P .. 'cool:' .. e, 1, 'PX', cooldown)
end
redis.call('DEL', lease)
redis.call('DEL', P .. 'claims:' .. e)
return 1
""")

# ARGV: entity, me, key, value. Writes key only while `me` still holds the entity's lease:
# a worker whose lease expired mid-request must not overwrite what a successor wrote.
FENCED_SET = _lua("""
if redis.call('GET', P .. 'lease:' .. ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('SET', ARGV[3], ARGV[4])
return 1
""")

# ARGV: n_entities, entities..., now_iso, cap, reserve_ms, queue
# Marks entities due without an event (a sweeper's "look again"), starting a drain job.
TOUCH = _lua("""
local n = tonumber(ARGV[1])
local base = n + 1
local now_ms, now_iso, cap = clock_ms(), ARGV[base + 1], tonumber(ARGV[base + 2])
local reserve_ms, queue = tonumber(ARGV[base + 3]), ARGV[base + 4]
for i = 1, n do redis.call('ZADD', KEYS_DIRTY, 'LT', now_ms, ARGV[1 + i]) end
return ensure_drainer(now_ms, now_iso, cap, reserve_ms, queue)
""")


def job_template(
    queue: str, *, timeout: int = 300, result_ttl: int = 60, failure_ttl: int = 86400
) -> list[Any]:
    """The fields of a queued drain job exactly as RQ itself writes them, as HSET pairs.

    Built with RQ's Job (no Redis call), so the hash matches the installed RQ version.
    """
    job = Job.create(
        DRAIN_FUNC,
        connection=redis.Redis(),  # never used: to_dict() does no I/O
        serializer=JSONSerializer,
        id="template",
        timeout=timeout,
        result_ttl=result_ttl,
        failure_ttl=failure_ttl,
        description="partnersync: reconcile due entities",
    )
    job.origin = queue
    job.enqueued_at = datetime.now(UTC)  # replaced by the enqueue time inside Redis
    job._status = JobStatus.QUEUED
    flat: list[Any] = []
    for name, value in job.to_dict().items():
        if name in ("created_at", "enqueued_at"):
            value = _NOW
        elif isinstance(value, JobStatus):
            value = value.value
        flat.extend((name, value))
    return flat


def install_template(connection: redis.Redis, queue: str) -> None:
    """Keep the drain-job template in Redis, where the Lua scripts read it."""
    pipe = connection.pipeline(transaction=True)
    pipe.delete(keys.rq_template(queue))
    pipe.rpush(keys.rq_template(queue), *job_template(queue))
    pipe.execute()


def now_ms() -> int:
    """This process's wall clock: for what is shown (RQ's timestamps, ids), never for a
    comparison with a time another process set (use `redis_ms`)."""
    return int(time.time() * 1000)


def crashes(claims: list[bytes | None]) -> list[int]:
    """Per entity: attempts in a row that never completed (claims since the last COMPLETE,
    less the current one)."""
    return [max(0, int(c or 1) - 1) for c in claims]


def redis_ms(connection: redis.Redis) -> int:
    """Redis's clock, the one every process compares due times and scores against."""
    seconds, micros = connection.time()
    return seconds * 1000 + micros // 1000


def rq_now(ms: int) -> str:
    """RQ's timestamp format (rq.utils.utcformat)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Event:
    """One event for the intake script."""

    event_type: str
    body: bytes
    entities: Sequence[str]
    dedupe_key: str = ""  # keys.dedupe(...) or '' for none


def intake_args(
    events: Sequence[Event],
    *,
    dedupe_ttl: int,
    inbox_ttl: int,
    cap: int,
    queue: str,
    source: str = "",
    reserve_ms: int = 60_000,
) -> list[Any]:
    args: list[Any] = [
        dedupe_ttl,
        inbox_ttl,
        rq_now(now_ms()),  # RQ's enqueued_at: shown, never compared
        cap,
        reserve_ms,
        queue,
        source,
        len(events),
    ]
    for e in events:
        args += [e.dedupe_key, e.event_type, e.body, len(e.entities), *e.entities]
    return args


def intake_replies(reply: list[Any]) -> tuple[list[tuple[bool, str]], Any]:
    """[(accepted, delivery id), ...] and the drainer result."""
    pairs = [
        (bool(reply[i]), reply[i + 1].decode() if isinstance(reply[i + 1], bytes) else reply[i + 1])
        for i in range(0, len(reply) - 1, 2)
    ]
    return pairs, reply[-1]


class WorkQueue:
    """The synchronous side (jobs, clock, CLI) of the dirty set and its drain jobs."""

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

    def fenced_set(self, entity: str, me: str, key: str, value: bytes, pipe: Any = None) -> Any:
        """SET key value if `me` still holds `entity`'s lease (1), else nothing (0)."""
        return self._fenced_set(args=[entity, me, key, value], client=pipe or self.connection)

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
        self, event: Event, *, dedupe_ttl: int, inbox_ttl: int, source: str = "recovered-"
    ) -> bool:
        """The receiver's intake, for events that arrive by polling (sweepers, pollers);
        `source` prefixes their counters."""
        args = intake_args(
            [event],
            dedupe_ttl=dedupe_ttl,
            inbox_ttl=inbox_ttl,
            cap=self.drainers,
            queue=self.queue,
            source=source,
        )
        ((accepted, _),), drainer = intake_replies(self._intake(args=args))
        if self._ensure_template(drainer):
            self.kick()
        return accepted

    def kick(self, *, force: bool = False, reserve_ms: int = 60_000) -> str | None:
        args = [rq_now(now_ms()), self.drainers, reserve_ms, self.queue, int(force)]
        job_id = self._kick(args=args)
        if self._ensure_template(job_id):
            job_id = self._kick(args=args)
        return job_id.decode() if job_id else None

    def touch(self, entities: Sequence[str], reserve_ms: int = 60_000) -> str | None:
        args = [len(entities), *entities, rq_now(now_ms()), self.drainers, reserve_ms, self.queue]
        job_id = self._touch(args=args)
        if self._ensure_template(job_id):
            job_id = self.kick(reserve_ms=reserve_ms)
            return job_id
        return job_id.decode() if job_id else None

    def touch_on(self, pipe: redis.client.Pipeline, entities: Sequence[str]) -> None:
        """`touch`, queued on a pipeline (a drain job is running: the template is there)."""
        args = [len(entities), *entities, rq_now(now_ms()), self.drainers, 60_000, self.queue]
        self._touch(args=args, client=pipe)

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
        flat = self._claim(args=[me, batch, self.lease_ms, self.lease_ms * 2, MAX_EVENTS])
        return [
            (flat[i].decode(), [d.decode() for d in flat[i + 1]]) for i in range(0, len(flat), 2)
        ]

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
        args = [entity, me, n_done, outcome, delay_ms, self.cooldown_ms]
        self._complete(args=args, client=pipe)
