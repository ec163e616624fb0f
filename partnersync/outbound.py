"""The outbox: the mirror's changes on their way to the team's endpoints (outbound
webhooks, partnersync/endpoints.py), at least once and in order per entity.

The router reads the change stream from its cursor and appends each change to a queue
per endpoint and entity, for every endpoint whose patterns want it, moving the cursor in
the same script (a second router finds the cursor moved and writes nothing). Only an
entity's first message is ever in flight to an endpoint: a later transition never
overtakes an earlier one there, and other entities never wait for it. A claim leases the
first message (its due time moves to the lease's end), so a sender killed mid-delivery
leaves it due again: it is redelivered with the same `webhook-id`, the change's id.

A failed attempt is retried on the retry schedule (jittered, Retry-After the floor); with
its attempts spent it becomes the endpoint's dead letter for that entity, and the
entity's later messages wait behind it until it is replayed or purged. A disabled
endpoint's changes keep being queued: nothing is dropped while it is off.

Keys (keys.py): `ps:out:cursor`, `ps:out:senders`, `ps:out:failing`, `ps:out:counts`,
`ps:out:lag`, and per endpoint `ps:out:q:{ep}:{entity}`, `ps:out:due:{ep}`,
`ps:out:pending:{ep}`, `ps:out:tries:{ep}`, `ps:out:held:{ep}`, `ps:out:dlq:{ep}`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec
import redis

from partnersync import endpoints, keys, replies, rqbridge
from partnersync.endpoints import Endpoint
from partnersync.workqueue import lua, now_ms
from schemas.outbound import Change, ChangeEvent

log = logging.getLogger("partnersync.outbound")

ROUTE = lua("out_route.lua")
CLAIM = lua("out_claim.lua")
DONE = lua("out_done.lua")
FAIL = lua("out_fail.lua")
RELEASE = lua("out_release.lua")
SENDERS = lua("out_senders.lua")
ROUTE_BATCH = 500  # changes routed per script call
KICKED_TTL_MS = 30_000  # a queued sender job not started by then may be queued again
ENDPOINTS_CACHED_S = 5.0  # how long `kick` trusts its count of endpoints
# seconds from a change's write to its delivery (partnersync_endpoint_delivery_lag_seconds)
LAG_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0, 3600.0)


def lag_bucket(seconds: float) -> str:
    return next((str(le) for le in LAG_BUCKETS if seconds <= le), "+Inf")


class Message(NamedTuple):
    """One change as an endpoint gets it. Stored as `{change ms:013d} {change id} {body}`:
    the scripts read the change's time from its first 13 bytes."""

    change_ms: int
    change_id: str  # the stream entry's id: the delivery's webhook-id
    body: bytes

    def encode(self) -> bytes:
        return b"%013d %s " % (self.change_ms, self.change_id.encode()) + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Message:
        at, change_id, body = raw.split(b" ", 2)
        return cls(int(at), change_id.decode(), body)


class Claim(NamedTuple):
    entity: str
    message: bytes  # as stored: the scripts compare it to the queue's first
    tries: int  # failed attempts before this one


DELIVERED = "delivered"


class Outcome(NamedTuple):
    """What became of one claimed message (`Outbox.settle`)."""

    endpoint: str
    claim: Claim
    outcome: str  # DELIVERED, or the failure: `http_503`, `timeout`, `error`
    lag_s: float = 0.0  # delivered: from the change's write to its delivery
    retry_in_ms: int = 0  # failed: when to try again (if attempts remain)


class Round(NamedTuple):
    """What a sender's round trip (`Outbox.exchange`) brought back."""

    made: list[int]  # per outcome recorded, as `settle` returns
    claims: dict[str, list[Claim]]  # per endpoint id
    entries: list[Any]  # the changes after the cursor, for `route`


class Letter(msgspec.Struct, kw_only=True):
    """An endpoint's dead letter: an entity's first message, its attempts spent."""

    entity: str
    changeId: str
    type: str
    attempts: int
    error: str  # the last attempt's outcome: `http_503`, `timeout`, `error`
    at: datetime


_letter = msgspec.json.Decoder(Letter)
_event = msgspec.json.Encoder()
_event_type = msgspec.json.Decoder(ChangeEvent)


def payload(change_id: str, fields: dict[str, str]) -> bytes:
    """The body endpoints get for a change stream entry. The entry holds no partner data
    beyond ids and statuses, so there is nothing to mask."""
    change = Change(
        key=fields["key"], partner=fields["partner"], kind=fields["kind"], id=fields["id"],
        externalId=fields.get("externalId") or None, from_=fields.get("from") or None,
        to=fields["to"], modifiedOn=fields.get("modifiedOn") or None,
        decision=fields.get("decision", ""), changeId=change_id,
    )  # fmt: skip
    event_type = f"{change.partner}.{change.kind}.{change.to}"
    return _event.encode(ChangeEvent(type=event_type, timestamp=fields.get("at", ""), data=change))


def change_ms(change_id: str) -> int:
    return int(change_id.partition("-")[0])


class Outbox:
    """The outbox's keys and scripts; the sender (partnersync/sender.py) drives it."""

    def __init__(self, connection: redis.Redis, *, lease_ms: int, attempts: int, senders: int = 1):
        self.connection = connection
        self.cap = senders  # sender jobs at once
        self.lease_ms = lease_ms
        self.attempts = attempts
        self._route = connection.register_script(ROUTE)
        self._claim = connection.register_script(CLAIM)
        self._done = connection.register_script(DONE)
        self._fail = connection.register_script(FAIL)
        self._release = connection.register_script(RELEASE)
        self._senders = connection.register_script(SENDERS)
        self._endpoints_seen = (-1e9, 0)  # (monotonic time, how many) for `kick`

    # -- routing --------------------------------------------------------------------

    def cursor(self, targets: Sequence[Endpoint]) -> str:
        """The last change routed; before any, just before the oldest endpoint was made
        (then kept, so that the route script's check has a value to compare)."""
        start = f"{min((_ms(e.createdAt) for e in targets), default=now_ms())}-0"
        self.connection.set(keys.OUT_CURSOR, start, nx=True)
        return replies.text(self.connection.get(keys.OUT_CURSOR))

    def route(self, targets: Sequence[Endpoint], cursor: str, entries: list[Any]) -> str | None:
        """Route `entries` (the changes read after `cursor`) to the endpoints that want
        them; the new cursor, or None when another sender moved it first (nothing written:
        read again from `cursor()`)."""
        if not entries:
            return cursor
        args: list[Any] = [cursor, replies.text(entries[-1][0]), 0]
        n = 0
        for raw_id, raw_fields in entries:
            change_id = replies.text(raw_id)
            fields = {replies.text(k): replies.text(v) for k, v in (raw_fields or {}).items()}
            at = change_ms(change_id)
            message = b""
            for endpoint in targets:
                if at < _ms(endpoint.createdAt) or not endpoint.wants(
                    fields["partner"], fields["kind"], fields["to"]
                ):
                    continue
                if not message:
                    message = Message(at, change_id, payload(change_id, fields)).encode()
                args += [endpoint.id, fields["key"], at, message]
                n += 1
        args[2] = n
        queues = keys.out_queue("", "").removesuffix(":")  # the script adds `{ep}:{entity}`
        script_keys = [keys.OUT_CURSOR, queues, keys.out_due(""),
                       keys.out_pending(""), keys.out_held("")]  # fmt: skip
        return args[1] if self._route(keys=script_keys, args=args) else None

    def check_trimmed(self, cursor: str) -> None:
        """Changes the stream trimmed (PARTNERSYNC_CHANGES_MAXLEN) before they were routed
        are lost to the endpoints: said loudly, counted."""
        info = self.connection.xinfo_stream(keys.CHANGES)
        deleted = replies.text(info.get("max-deleted-entry-id") or "0-0")
        if _id(deleted) > _id(cursor):
            self.connection.hincrby(keys.OUT_COUNTS, "router:trimmed", 1)
            log.error(
                "changes trimmed from the stream before they were routed to the endpoints; "
                "raise PARTNERSYNC_CHANGES_MAXLEN",
                extra={"cursor": cursor, "trimmedUpTo": deleted},
            )

    # -- delivery ---------------------------------------------------------------------

    def exchange(
        self, outcomes: Sequence[Outcome], wanted: dict[str, int], cursor: str | None,
        most: int = ROUTE_BATCH,
    ) -> Round:  # fmt: skip
        """A sender's round in one round trip: record `outcomes` (`settle`), read the
        changes after `cursor` (at most `most`, for `route`; None: not the router), and
        claim, per endpoint id, up to its number of due entities: each one's first
        message, leased."""
        pipe = self.connection.pipeline(transaction=False)
        self._queue_settle(pipe, outcomes)
        if cursor is None:
            pipe.echo("")  # a reply in the changes' place
        else:
            pipe.xrange(keys.CHANGES, f"({cursor}", "+", count=most)
        for ep, n in wanted.items():
            self._claim(keys=[keys.out_due(ep), keys.out_queue(ep, ""), keys.out_tries(ep)],
                        args=[self.lease_ms, n], client=pipe)  # fmt: skip
        got = pipe.execute()
        made = self._settled(outcomes, got)
        tail = got[len(got) - len(wanted) - 1 :]
        claims = {
            ep: [
                Claim(replies.text(c[i]), bytes(c[i + 1]), int(c[i + 2]))
                for i in range(0, len(c), 3)
            ]
            for ep, c in zip(wanted, tail[1:], strict=True)
        }
        return Round(made, claims, tail[0] if cursor is not None else [])

    def settle(self, outcomes: Sequence[Outcome]) -> list[int]:
        """Record what became of claimed messages, in one round trip (see `_settled`)."""
        pipe = self.connection.pipeline(transaction=False)
        self._queue_settle(pipe, outcomes)
        return self._settled(outcomes, pipe.execute())

    def _queue_settle(self, pipe: redis.client.Pipeline, outcomes: Sequence[Outcome]) -> None:
        """Queue on `pipe` one script per outcome, which also counts it (only while the
        message is still first: a removed endpoint's late outcome writes nothing). Per
        outcome: for a delivery, 1 (the entity's next message is due now) or 0 (another
        sender, whose lease this one outlived, delivered it first); for a failure, the
        attempts made (retried in its `retry_in_ms`), negative when its attempts are spent
        (a dead letter; the entity's later messages wait behind it), 0 when delivered
        meanwhile."""
        for o in outcomes:
            ep, claim = o.endpoint, o.claim
            queue = keys.out_queue(ep, claim.entity)
            if o.outcome == DELIVERED:
                self._done(keys=[queue, keys.out_due(ep), keys.out_tries(ep), keys.out_pending(ep),
                                 keys.OUT_COUNTS, keys.OUT_LAG, keys.OUT_HEALTH],
                           args=[claim.entity, claim.message, ep, lag_bucket(o.lag_s),
                                 f"{o.lag_s:.6f}"], client=pipe)  # fmt: skip
                continue
            message = Message.decode(claim.message)
            letter = Letter(entity=claim.entity, changeId=message.change_id,
                            type=_type_of(message.body), attempts=claim.tries + 1,
                            error=o.outcome, at=datetime.now(UTC))  # fmt: skip
            self._fail(keys=[queue, keys.out_due(ep), keys.out_tries(ep), keys.out_pending(ep),
                             keys.out_held(ep), keys.out_dlq(ep), keys.OUT_COUNTS,
                             keys.OUT_HEALTH],
                       args=[claim.entity, claim.message, o.retry_in_ms, self.attempts,
                             msgspec.json.encode(letter), ep, o.outcome], client=pipe)  # fmt: skip

    def _settled(self, outcomes: Sequence[Outcome], replies_: Sequence[Any]) -> list[int]:
        """What each of `outcomes` came to, from the replies `_queue_settle` queued first."""
        made = [int(x) for x in replies_[: len(outcomes)]]
        for o, m in zip(outcomes, made, strict=True):
            if m < 0:
                log.warning("outbound delivery dead-lettered", extra={
                    "endpoint": o.endpoint, "entity": o.claim.entity, "attempts": -m,
                    "error": o.outcome})  # fmt: skip
        return made

    # -- dead letters -----------------------------------------------------------------

    def letters(self, endpoint: str) -> list[Letter]:
        """The endpoint's dead letters, oldest first (one per entity at most)."""
        found = [_letter.decode(v) for v in self.connection.hvals(keys.out_dlq(endpoint))]
        return sorted(found, key=lambda x: x.at)

    def release(self, endpoint: str, entity: str, *, purge: bool = False) -> bool:
        """Replay a dead letter (sent again with a fresh budget, the entity's queue goes on
        behind it) or purge it (dropped: the next message goes). False: no such letter."""
        return bool(self._release(
            keys=[keys.out_queue(endpoint, entity), keys.out_due(endpoint),
                  keys.out_pending(endpoint), keys.out_held(endpoint), keys.out_dlq(endpoint)],
            args=[entity, "purge" if purge else "replay"],
        ))  # fmt: skip

    # -- state --------------------------------------------------------------------------

    def state(self, endpoint_ids: Sequence[str]) -> dict[str, EndpointState]:
        """Per endpoint: entities waiting, dead letters, lag (the oldest deliverable
        change's age, on Redis's clock like the changes' ids), failing since; one round
        trip."""
        pipe = self.connection.pipeline(transaction=False)
        pipe.time()
        for ep in endpoint_ids:
            pipe.zcard(keys.out_pending(ep))
            pipe.hlen(keys.out_dlq(ep))
            pipe.zrange(keys.out_pending(ep), 0, 0, withscores=True)
            pipe.hget(keys.OUT_HEALTH, ep)
        (seconds, micros), *got = pipe.execute()
        now = seconds * 1000 + micros // 1000
        out = {}
        for i, ep in enumerate(endpoint_ids):
            waiting, dead, oldest, failing = got[i * 4 : i * 4 + 4]
            lag = max(0, now - int(oldest[0][1])) / 1000 if oldest else 0.0
            out[ep] = EndpointState(waiting, dead, lag, int(failing) if failing else None)
        return out

    def forget(self, endpoint: str) -> None:
        """Drop everything queued for a removed endpoint."""
        entities = {
            replies.text(e) for e in self.connection.zrange(keys.out_pending(endpoint), 0, -1)
        }
        entities |= {replies.text(e) for e in self.connection.smembers(keys.out_held(endpoint))}
        entities |= {replies.text(e) for e in self.connection.hkeys(keys.out_dlq(endpoint))}
        pipe = self.connection.pipeline(transaction=True)
        for entity in entities:
            pipe.delete(keys.out_queue(endpoint, entity))
        pipe.delete(keys.out_due(endpoint), keys.out_pending(endpoint), keys.out_tries(endpoint),
                    keys.out_held(endpoint), keys.out_dlq(endpoint))  # fmt: skip
        pipe.hdel(keys.OUT_HEALTH, endpoint)
        for figures in (keys.OUT_COUNTS, keys.OUT_LAG):
            mine = [
                f
                for f in self.connection.hkeys(figures)
                if replies.text(f).startswith(f"{endpoint}:")
            ]
            if mine:
                pipe.hdel(figures, *mine)
        pipe.execute()

    # -- the sender job's slot --------------------------------------------------------------

    def senders(self, action: str, me: str, ttl_ms: int = 0, *, cap: int | None = None) -> int:
        """`take` a sender's place for job `me` (a queued one's, or a free one), `hold` it
        (extend; 2: it routes too, 0: its place is lost), `release` it, or `kick` (queue
        one more if fewer than the cap are queued or running: 1 when one must be
        enqueued). 0 when not done."""
        return int(self._senders(keys=[keys.OUT_SENDERS, keys.OUT_ROUTER],
                                 args=[action, me, ttl_ms, cap or self.cap]))  # fmt: skip

    def kick(self, queue: str, *, check: bool = False, helper: bool = False) -> bool:
        """Enqueue a sender job unless one is queued or running (`helper`: unless the cap
        of them are, for a saturated sender: a sender takes a worker, which reconcile jobs
        need too); `check`: only when there is work (`has_work`). Costs nothing while no
        endpoint exists."""
        seen_at, count = self._endpoints_seen
        if time.monotonic() - seen_at > ENDPOINTS_CACHED_S:
            count = int(self.connection.hlen(keys.ENDPOINTS))
            self._endpoints_seen = (time.monotonic(), count)
        if not count or (check and not self.has_work()):
            return False
        if not self.senders("kick", uuid.uuid4().hex, KICKED_TTL_MS, cap=self.cap if helper else 1):
            return False
        rqbridge.enqueue(self.connection, queue, rqbridge.DELIVER_FUNC,
                         "partnersync: deliver changes to the endpoints")  # fmt: skip
        return True

    def others_waiting(self, queue: str) -> bool:
        """Jobs queued for a worker (a reconcile, another sender): a sender hands over."""
        return bool(self.connection.llen(rqbridge.queue_key(queue)))

    def has_work(self) -> bool:
        """Changes not yet routed, or a message due now, for any endpoint."""
        targets = [e.id for e in endpoints.listed(self.connection) if not e.disabled]
        if not targets:
            return False
        pipe = self.connection.pipeline(transaction=False)
        pipe.time()  # due times are Redis's
        pipe.get(keys.OUT_CURSOR)
        pipe.xrevrange(keys.CHANGES, "+", "-", count=1)
        for ep in targets:
            pipe.zrange(keys.out_due(ep), 0, 0, withscores=True)
        (seconds, micros), cursor, last, *first = pipe.execute()
        now = seconds * 1000 + micros // 1000
        unrouted = bool(last) and (
            cursor is None or replies.text(last[0][0]) != replies.text(cursor)
        )
        return unrouted or any(f and f[0][1] <= now for f in first)


class EndpointState(NamedTuple):
    waiting: int  # entities with a message queued (dead letters apart)
    dead: int  # dead letters
    lag_s: float  # age of the oldest deliverable change not yet delivered
    failing_since_ms: int | None  # first failure since the last success


def condition(endpoint: Endpoint, state: EndpointState) -> str:
    """`disabled`, `failing` (no success since its last failure) or `active`."""
    return "disabled" if endpoint.disabled else "failing" if state.failing_since_ms else "active"


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _id(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _type_of(body: bytes) -> str:
    try:
        return _event_type.decode(body).type
    except msgspec.DecodeError:  # not one of ours: shown without a type
        return ""
