"""Outbound creates that are never booked twice.

1. The externalId is derived from the command's intent: the caller's idempotency key, or
   (without one) a hash of the command's business fields — the same intent gives the same
   externalId on every retry, on every machine.
2. A journal record (externalId → command, state, attempts) is written before any request
   goes out, and the state is set to SENT before each send; with PARTNERSYNC_MIN_REPLICAS
   both are confirmed on that many replicas first (partnersync/replication.py), or nothing
   is sent.
3. The command then runs in the work queue under the key `{partner}:command:{externalId}`:
   leased (never two senders at once), retried with backoff, re-run after a worker crash.
4. A send whose outcome is unknown (timeout, connection error, 5xx, a crash while SENT) is
   followed by a lookup of the externalId at the partner; only when the partner certainly
   has nothing is it sent again. 409 / a duplicate 400 → found and linked. Other 4xx →
   REJECTED with the partner's error, never retried. 429 → resent after Retry-After.
5. A create the partner does not deduplicate (Saxo's ExternalReference) is looked up
   before every send, the first included: after a failover the journal may be older than
   the partner's truth, so no journal state proves "never sent".
6. A create whose answer did not come is aborted at the socket (RST) before its lease
   expires: nothing of it can reach the partner after a successor's lookup.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import redis

from partnersync import (
    config,
    failpoints,
    keys,
    metrics,
    packing,
    paging,
    partner,
    replication,
    replies,
    retry,
    store,
    transport,
    workqueue,
)
from partnersync.client import retry_after as client_retry_after
from partnersync.commandkind import CommandKind, Lookup, body_fields
from partnersync.config import Settings
from partnersync.errors import Crashed, NotFound, PartnerError, RateLimited, Retryable
from schemas.commands import Attempt, CommandRecord, CommandState, PartnerRejection

if TYPE_CHECKING:
    from partnersync.context import Context

__all__ = ["CommandError", "CommandKind", "Lookup", "NotConfirmed", "body_fields", "submit"]

log = logging.getLogger("partnersync.commands")

COMMAND = "command"  # the kind segment of a command's work-queue key
REPLICAS_WAIT_S = 5.0  # a send stopped for want of replicas is tried again this much later
EXTERNAL_ID_MAX = 50  # the shortest a partner allows (Saxo's ExternalReference)
_record_decoder = msgspec.json.Decoder(CommandRecord)
_FIELDS = (Path(__file__).parent / "lua" / "fields.lua").read_text()
_ZSTD = b"\x03"  # a compressed record's first byte (a JSON one starts with "{")
_item = msgspec.json.Decoder(dict[str, Any])
_exact = msgspec.json.Decoder(dict[str, Any], float_hook=Decimal)  # amounts stay exact
_encoder = msgspec.json.Encoder(decimal_format="number", order="sorted")


class CommandError(ValueError):
    """The command cannot be submitted; the message says why and what to do."""


class NotConfirmed(CommandError):
    """The journal record is on the primary but not yet on PARTNERSYNC_MIN_REPLICAS
    replicas: nothing is sent until it is; submitting the same intent again is safe."""


# -- intent → externalId ---------------------------------------------------------------


def canonical(value: Any) -> bytes:
    """The intent's business fields, independent of field order and of how a number is
    written (1 and 1.00 are one amount)."""

    def norm(v: Any) -> Any:
        if isinstance(v, Decimal | float | int) and not isinstance(v, bool):
            d = Decimal(str(v)).normalize()
            return format(d, "f")
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return _encoder.encode(norm(msgspec.to_builtins(value, builtin_types=(Decimal,), enc_hook=str)))


def derive_external_id(partner: str, kind: str, intent_key: str | None, data: Any) -> str:
    """Same intent, same externalId — on every retry, on every machine. 35 characters, so
    it fits Saxo's 50-character ExternalReference too."""
    basis = f"key\x1f{intent_key}".encode() if intent_key else b"body\x1f" + canonical(data)
    digest = hashlib.blake2b(f"{partner}\x1f{kind}\x1f".encode() + basis, digest_size=16)
    external_id = "ps-" + digest.hexdigest()
    assert len(external_id) <= EXTERNAL_ID_MAX
    return external_id


def command_key(partner: str, external_id: str) -> str:
    return keys.entity_key(partner, COMMAND, external_id)


def load(connection: redis.Redis, external_id: str) -> CommandRecord | None:
    return decode(read(connection, [external_id])[0])


def queue_read(pipe: redis.client.Pipeline, external_ids: Sequence[str]) -> None:
    """Queue one read of these journal entries (lua/fields.lua); its reply is a list."""
    script_keys = [k for x in external_ids for k in (keys.journal(x)[0], keys.command(x))]
    pipe.eval(_FIELDS, len(script_keys), *script_keys, *external_ids)


def read(connection: redis.Redis, external_ids: Sequence[str]) -> list[Any]:
    """The journal entries as stored (None where there is none)."""
    if not external_ids:
        return []
    pipe = connection.pipeline(transaction=False)
    queue_read(pipe, external_ids)
    return list(pipe.execute()[0])


def decode(raw: bytes | str | None) -> CommandRecord | None:
    """A journal entry as stored (None: no such command)."""
    if raw is None:
        return None
    if isinstance(raw, bytes) and raw[:1] == _ZSTD:
        raw = packing.DICTIONARIES.decompress(raw[1:])
    return _record_decoder.decode(raw)


def encode(record: CommandRecord) -> bytes:
    """A journal entry as stored: its JSON, compressed with its command kind's dictionary
    when its partner ships one (packing.py)."""
    encoded = msgspec.json.encode(record)
    framed = packing.DICTIONARIES.compress(record.partner, f"cmd-{record.kind}", encoded)
    return encoded if framed is None else _ZSTD + framed


def save(connection: redis.Redis | redis.client.Pipeline, record: CommandRecord) -> None:
    """Write the journal entry (in its bucket; an older store's key of its own goes)."""
    connection.hset(*keys.journal(record.externalId), encode(record))
    connection.delete(keys.command(record.externalId))


def _kind(settings: Settings, kind_name: str, acting_for: str | None) -> CommandKind:
    known = partner.load(settings.partners).commands
    kind = known.get(kind_name)
    if kind is None:
        raise CommandError(f"unknown command {kind_name!r}; known: {', '.join(sorted(known))}")
    if kind.acting_for and not acting_for:
        raise CommandError(
            f"{kind_name}: {kind.partner} requires {kind.acting_for} (--acting-for ID)"
        )
    return kind


def _resubmitted(
    connection: redis.Redis,
    wq: workqueue.WorkQueue,
    settings: Settings,
    kind: CommandKind,
    existing: CommandRecord,
    fields: dict[str, Any],
    path_params: dict[str, str],
    used: str,
) -> CommandRecord:
    """The same intent submitted again: the journaled record, if it is the same command."""
    same = canonical(_exact.decode(existing.body)) == canonical(fields)
    if not same or existing.pathParams != path_params or existing.kind != kind.name:
        raise CommandError(
            f"{used} was already used for a different {existing.kind} "
            f"(externalId {existing.externalId}); use a new one for a new intent"
        )
    _refuse_if_spent(connection, kind, existing.externalId, existing.entityId)
    if existing.state == CommandState.PENDING_SEND and existing.attempts == 0:
        # an earlier submit may have stopped short of the replicas: finish it
        _confirm(connection, settings, existing.externalId)
        wq.touch([command_key(kind.partner, existing.externalId)])
    return existing


def submit(
    connection: redis.Redis,
    wq: workqueue.WorkQueue,
    kind_name: str,
    data: Any,
    *,
    intent_key: str | None = None,
    acting_for: str | None = None,
    settings: Settings | None = None,
) -> tuple[CommandRecord, bool]:
    """Journal the command and queue it. Returns (record, created); created is False when
    this intent was already submitted (the existing record is returned, nothing is sent)."""
    settings = settings or config.load()
    kind = _kind(settings, kind_name, acting_for)
    fields = msgspec.to_builtins(data, builtin_types=(Decimal,), enc_hook=str)
    given = fields.get(kind.external_id) if kind.external_id else None
    if given is not None and intent_key is not None:
        raise CommandError(
            f"{kind_name}: the body's {kind.external_id} is the idempotency key; "
            "give it or --key, not both"
        )
    # the caller's own id is the idempotency key as given; else one derived from the intent
    external_id = given or derive_external_id(kind.partner, kind.name, intent_key, data)
    path_params = {f: str(fields.pop(f)) for f in kind.path_fields}
    if kind.validate is not None:
        kind.validate(data, settings, connection)
    if kind.external_id:
        fields[kind.external_id] = external_id
    existing = load(connection, external_id)
    if existing is not None:
        used = f"{kind.external_id} {given!r}" if given else f"intent key {intent_key!r}"
        return _resubmitted(
            connection, wq, settings, kind, existing, fields, path_params, used
        ), False
    _refuse_if_spent(connection, kind, external_id, None)

    now = datetime.now(UTC)
    record = CommandRecord(
        externalId=external_id, partner=kind.partner, kind=kind.name, intentKey=intent_key,
        body=msgspec.Raw(_encoder.encode(fields)), pathParams=path_params,
        actingFor=acting_for, createdAt=now, updatedAt=now,
    )  # fmt: skip
    pipe = connection.pipeline(transaction=True)
    pipe.hsetnx(*keys.journal(external_id), encode(record))
    pipe.zadd(keys.command_index(kind.name, CommandState.PENDING_SEND),
              {external_id: int(now.timestamp() * 1000)})  # fmt: skip
    created, _ = pipe.execute()
    if not created:  # a concurrent submit of the same intent won: link to it
        return load(connection, external_id), False  # type: ignore[return-value]
    connection.hincrby(keys.COMMAND_STATES, CommandState.PENDING_SEND, 1)
    # queued only once the journal would survive a failover (else a re-submit finds nothing
    # and the first send is never known)
    _confirm(connection, settings, external_id)
    wq.touch([command_key(kind.partner, external_id)])
    return record, True


def _confirm(connection: redis.Redis, settings: Settings, external_id: str) -> None:
    try:
        replication.confirm(connection, settings.min_replicas, settings.replica_timeout_ms)
    except replication.NotReplicated as exc:
        raise NotConfirmed(
            f"command {external_id} is journaled on the primary but not on "
            f"PARTNERSYNC_MIN_REPLICAS={settings.min_replicas} replicas ({exc}): nothing was "
            "sent; submit it again with the same intent (--key) once the replicas are back"
        ) from None


def _refuse_if_spent(
    connection: redis.Redis, kind: CommandKind, external_id: str, entity_id: str | None
) -> None:
    """An externalId whose entity reached a status in `kind.spent_by` is spent: the partner
    never takes it again."""
    entity_key = (
        keys.entity_key(kind.partner, kind.entity_kind, entity_id)
        if entity_id
        else store.by_external_id(connection, kind.partner, external_id)
    )
    record = store.load(connection, [entity_key])[0] if entity_key else None
    if record is not None and record.status in kind.spent_by:
        reason = f" ({record.refusal.code})" if record.refusal else ""
        raise CommandError(
            f"externalId {external_id} was used by a {kind.name} that became "
            f"{record.status}{reason}; "
            f"{kind.partner} never accepts an externalId twice: submit it again with a new intent key (--key)"
        )


# -- execution (inside a drain job, under the command's lease) ---------------------------


@dataclass
class Outcome:
    record: CommandRecord
    done: bool  # final state reached (or nothing to do)
    retry_after: float | None = None
    waiting: bool = (
        False  # nothing attempted (scope busy, predecessor's deadline): no attempt spent
    )
    audit_in: float | None = None  # done, but audited once more this many seconds later
    finished: bool = False  # done before this step (its links and counts are written)
    orphaned: bool = False  # an earlier send created an entity nobody can name: a human's


@dataclass(frozen=True)
class Lease:
    """What a command may do under its drain job's lease."""

    me: str  # the drain job holding it
    clock_ms: int  # Redis's clock when the batch started
    deadline: float  # time.monotonic() after which no request may leave
    deadline_ms: int  # the same moment on Redis's clock
    expires: float  # time.monotonic() by which the lease could expire: every request ends before

    def abort_in(self) -> float:
        """Seconds left for a create to be answered before it is aborted at the socket:
        a margin before the lease could expire, so no byte of it is left in flight for the
        successor's lookup to miss."""
        margin = min(1.0, (self.expires - self.deadline) / 10)
        return max(0.0, self.expires - margin - time.monotonic())


def _note(record: CommandRecord, action: str, outcome: str) -> None:
    now = datetime.now(UTC)
    record.history = [*record.history, Attempt(at=now, action=action, outcome=outcome)][-50:]
    record.updatedAt = now


def _accept(record: CommandRecord, entity_id: str) -> Outcome:
    record.state = CommandState.ACCEPTED
    record.entityId = entity_id
    return Outcome(record, done=True)


def _take(connection: redis.Redis, key: str, value: str) -> bool:
    """Set `key` to `value` unless it holds another value; True when it holds `value`.
    (SET NX, then GET: these keys never change once set, only go away.)"""
    if connection.set(key, value, nx=True):
        return True
    owner = connection.get(key)
    return replies.optional_text(owner) == value


def linked(connection: redis.Redis, entity_key: str) -> str | None:
    """The externalId of the command the entity is linked to, if any."""
    pipe = connection.pipeline(transaction=False)
    pipe.hget(*keys.command_link(entity_key))
    pipe.get(keys.older_command_link(entity_key))
    new, older = pipe.execute()
    return replies.optional_text(new if new is not None else older)


def _link(
    connection: redis.Redis, kind: CommandKind, record: CommandRecord, ids: list[str]
) -> str | None:
    """The first of `ids` not linked to another command, now linked to this one: an
    entity belongs to at most one command, whatever two lookups see (HSETNX, then HGET:
    a link never changes once set, only goes away)."""
    for entity_id in ids:
        entity = keys.entity_key(kind.partner, kind.entity_kind, entity_id)
        older = replies.optional_text(connection.get(keys.older_command_link(entity)))
        if older is not None:  # linked in an older store: that link stands
            if older == record.externalId:
                return entity_id
            continue
        where = keys.command_link(entity)
        if connection.hsetnx(*where, record.externalId) or (
            replies.optional_text(connection.hget(*where)) == record.externalId
        ):
            return entity_id
    return None


def _answer_body(content: bytes) -> dict[str, Any] | None:
    """An action's answer, when it is a JSON object (a 202 has none; a cancel's 200 may
    carry `{modificationId}`)."""
    try:
        return _item.decode(content) if content.strip() else None
    except msgspec.DecodeError:
        return None


def _is_duplicate(status: int, rejection: PartnerRejection) -> bool:
    """409, or a 400 that says so (how Tradevest refuses an externalId it has; Saxo does
    not dedupe ExternalReference, so never answers either)."""
    if status == 409:
        return True
    text = f"{rejection.errorCode or ''} {rejection.message}".upper()
    return status == 400 and (
        "DUPLICATE" in text or "ALREADY USED" in text or "ALREADY EXISTS" in text
    )


class LeaseLost(Exception):
    """Another worker took the command over (this one's lease expired): stop, write nothing."""


def _scope_key(kind: CommandKind, record: CommandRecord) -> str:
    values = {**body_fields(record), **record.pathParams}
    scope = "|".join(values.get(f, "") for f in kind.scope)
    return keys.command_scope(kind.partner, kind.name, scope)


async def _lookup(
    ctx: Context, kind: CommandKind, client: Any, record: CommandRecord
) -> Outcome | None:
    """After an unknown outcome: the partner's entity for this command, linked, or None."""
    found = await kind.lookup(client, record)
    failpoints.hit("commands.after_lookup")
    if not kind.creates:  # an action: its effect seen at the partner, or not
        _note(record, "lookup", "took effect" if found else "no effect seen")
        return _accept(record, found[0]) if found else None
    entity_id = _link(ctx.connection, kind, record, found) if found else None
    _note(record, "lookup", "found" if entity_id else "not found")
    if entity_id is None:
        return None
    _audit(record, found)
    return _accept(record, entity_id)


def _audit(record: CommandRecord, found: list[str]) -> None:
    """More than one entity answers to this command: a second booking. Raised as
    attention (command show, status, a metric); a human decides which one to undo."""
    if len(found) > 1 and sorted(found) != sorted(record.doubleBooking):
        record.doubleBooking = sorted(found)
        _note(record, "audit", f"DOUBLE BOOKING: {len(found)} entities ({', '.join(found)})")
        log.error("double booking", extra={"externalId": record.externalId, "entities": len(found)})


async def execute(ctx: Context, record: CommandRecord, lease: Lease) -> Outcome:
    """One step of a command under its lease: wait, look up, or send and read the answer."""
    kind = ctx.catalog.commands[record.kind]
    client = ctx.command_clients[kind.partner]
    before = await _before_send(ctx, kind, client, record, lease)
    if before is not None:
        return before
    response = await _send(ctx, kind, client, record, lease)
    if isinstance(response, Outcome):
        return response
    return await _answer(ctx, kind, client, record, response, lease)


async def _before_send(
    ctx: Context, kind: CommandKind, client: Any, record: CommandRecord, lease: Lease
) -> Outcome | None:
    """An outcome reached without sending (final, waiting, found by lookup), else None."""
    if record.state.final:
        if record.auditDueMs is not None:  # the second look after an accepted resend
            if record.auditDueMs > lease.clock_ms:
                wait_s = (record.auditDueMs - lease.clock_ms) / 1000
                return Outcome(record, done=True, finished=True, audit_in=wait_s)
            record.auditDueMs = None
            _audit(record, await kind.lookup(client, record))
            _note(record, "audit", f"{len(record.doubleBooking) or 1} booking(s)")
        return Outcome(record, done=True, finished=True)
    if kind.scope and not _take(ctx.connection, _scope_key(kind, record), record.externalId):
        return Outcome(record, done=False, retry_after=1.0, waiting=True)  # another create runs
    unproven = not kind.dedupes and kind.external_id is not None
    if unproven or record.state in (CommandState.SENT, CommandState.UNKNOWN):
        deadline_ms = record.sendDeadlineMs or 0
        if record.state == CommandState.SENT and deadline_ms > lease.clock_ms:
            # its sender may still send until then: look up only once it could not
            wait_s = (deadline_ms - lease.clock_ms) / 1000
            return Outcome(record, done=False, retry_after=wait_s, waiting=True)
        accepted = await _lookup(ctx, kind, client, record)
        if accepted is not None:
            return accepted
    if kind.snapshot is not None and record.snapshot is None:
        record.snapshot = await kind.snapshot(client, record)
    return None


async def _send(
    ctx: Context, kind: CommandKind, client: Any, record: CommandRecord, lease: Lease
) -> httpx.Response | Outcome:
    """SENT, made durable under the lease (and on the replicas), then the POST; an Outcome
    when no answer came."""
    # the partner's budget first (RateLimited: nothing journaled as sent, no attempt spent)
    path = kind.path.format(**record.pathParams)
    await client.pace(kind.method, path)
    before = (record.state, record.attempts, record.sentAt, record.sendDeadlineMs)
    record.state = CommandState.SENT
    record.attempts += 1
    record.sentAt = datetime.now(UTC)
    record.sendDeadlineMs = lease.deadline_ms
    _note(record, "send", "sending")
    # durable before the request goes out — and only while this worker holds the lease
    key = command_key(record.partner, record.externalId)
    encoded = encode(record)
    where, older = keys.journal(record.externalId), keys.command(record.externalId)
    if not ctx.workqueue.fenced_set(key, lease.me, where, encoded, older):
        raise LeaseLost(record.externalId)
    s = ctx.settings
    try:
        replication.confirm(ctx.connection, s.min_replicas, s.replica_timeout_ms)
    except replication.NotReplicated as exc:
        # SENT might not survive a failover: not sent, the journal goes back to what it was
        record.state, record.attempts, record.sentAt, record.sendDeadlineMs = before
        record.history[-1].outcome = f"not sent: journal not on the replicas ({exc})"
        return Outcome(record, done=False, retry_after=REPLICAS_WAIT_S, waiting=True)
    failpoints.hit("commands.before_send")
    token = transport.send_deadline.set(lease.deadline)
    try:
        if time.monotonic() >= lease.deadline:  # also where no custom transport runs (proxies)
            raise transport.DeadlinePassed("send deadline passed before the request")
        # Answered, or aborted at the socket (RST: transport.py) before the lease could
        # expire, whatever httpx's per-phase timeouts would allow.
        async with asyncio.timeout(lease.abort_in()):
            body = None if kind.method == "DELETE" else bytes(record.body)
            response: httpx.Response = await client.request(
                kind.method,
                path,
                content=body,
                headers={"Content-Type": "application/json"} if body is not None else None,
                acting_for=record.actingFor if kind.acting_for else None,
                paced=True,
            )
    except TimeoutError:
        record.state = CommandState.UNKNOWN
        _note(record, "send", "no answer before the lease's end: aborted")
        return Outcome(record, done=False)
    except transport.DeadlinePassed:
        # Nothing left (e.g. it waited too long for a pooled connection). The lease still
        # holds (the deadline comes first; the write below is fenced): say so and claim it
        # again at once for a fresh deadline, looking up first to be safe.
        record.state = CommandState.UNKNOWN
        _note(record, "send", "not sent: lease deadline passed")
        return Outcome(record, done=False, retry_after=0.0, waiting=True)
    except Retryable as exc:
        record.state = CommandState.UNKNOWN
        _note(record, "send", "timeout" if "Timeout" in str(exc) else "connection error")
        return Outcome(record, done=False)
    finally:
        transport.send_deadline.reset(token)
    return response


async def _answer(
    ctx: Context,
    kind: CommandKind,
    client: Any,
    record: CommandRecord,
    response: httpx.Response,
    lease: Lease,
) -> Outcome:
    """What the partner's answer to the request makes of the command."""
    status = response.status_code
    record.history[-1].outcome = str(status)
    if status < 300 and not kind.creates:  # an action's 200/202: done, on its target
        record.result = _answer_body(response.content)
        target = record.pathParams.get(kind.target) if kind.target else None
        record.state = CommandState.ACCEPTED
        record.entityId = target
        return Outcome(record, done=True)
    if status < 300:
        record.result = _item.decode(response.content)
        entity_id = str(record.result[kind.result_field])
        _link(ctx.connection, kind, record, [entity_id])
        outcome = _accept(record, entity_id)
        if record.attempts > 1:  # a resend: did an earlier send book it too?
            _audit(record, await kind.lookup(client, record))
            if not kind.dedupes:
                # an earlier attempt's request may arrive after this lookup (a worker paused
                # between its deadline check and the socket): look once more, later
                s = ctx.settings
                outcome.audit_in = s.lease_ms / 1000 + s.http_timeout_s
                record.auditDueMs = lease.clock_ms + int(outcome.audit_in * 1000)
        return outcome
    rejection = client.rejection(response)
    if rejection.errorCode in kind.resent_codes and record.attempts > 1:
        record.state = CommandState.REJECTED
        record.rejection = rejection
        _note(
            record, "resend",
            f"{rejection.errorCode}: an earlier send reached {kind.partner}; its "
            f"{kind.result_field} is unknown ({kind.partner} offers no lookup by an id of ours): "
            f"ask {kind.partner}, nothing is sent again",
        )  # fmt: skip
        log.error("create orphaned", extra={"externalId": record.externalId, "kind": kind.name})
        return Outcome(record, done=True, orphaned=True)
    if kind.creates and _is_duplicate(status, rejection):
        accepted = await _lookup(ctx, kind, client, record)
        if accepted is not None:
            return accepted
        record.state = CommandState.UNKNOWN  # the partner has it but does not list it yet
        return Outcome(record, done=False)
    if status == 429:
        record.state = CommandState.PENDING_SEND  # not acted on: send again later
        return Outcome(record, done=False, retry_after=client_retry_after(response))
    if status >= 500 or status in (401, 403, 408):
        record.state = CommandState.UNKNOWN
        return Outcome(record, done=False, retry_after=client_retry_after(response))
    record.state = CommandState.REJECTED
    record.rejection = rejection
    return Outcome(record, done=True)


async def run_batch(
    ctx: Context, me: str, claimed: list[str], deadline: float | None = None
) -> dict[str, int]:
    """Execute claimed commands (`{partner}:command:{externalId}` keys) concurrently.
    `deadline` (time.monotonic()) is when the claim's leases could start to expire, less
    an HTTP timeout: no create leaves after it."""
    import asyncio

    connection = ctx.connection
    s = ctx.settings
    if deadline is None:
        deadline = time.monotonic() + s.lease_ms / 1000 - s.http_timeout_s
    clock = workqueue.redis_ms(connection)
    lease = Lease(
        me, clock, deadline, clock + int((deadline - time.monotonic()) * 1000),
        expires=deadline + s.http_timeout_s,
    )  # fmt: skip
    ids = [keys.split_entity_key(k)[2] for k in claimed]
    raws = read(connection, ids)
    attempts_raw = [int(a or 0) for a in connection.mget([keys.attempts(k) for k in claimed])]
    crashed = workqueue.crashes(connection.mget([keys.claims(k) for k in claimed]))
    records = [decode(r) for r in raws]

    async def one(record: CommandRecord | None, spent: int) -> Outcome | BaseException | None:
        if record is None:
            return None
        if spent >= s.max_crashes:  # the last attempts crashed: stop here, dead-letter
            return Crashed(f"command {record.externalId}: {spent} attempts in a row crashed")
        try:
            return await execute(ctx, record, lease)
        except (Retryable, NotFound, PartnerError, LeaseLost) as exc:
            return exc

    # as loaded: execute() changes the records in place
    before = [(r.state, bool(r.doubleBooking)) if r is not None else (None, False) for r in records]
    results = await asyncio.gather(
        *(one(r, c) for r, c in zip(records, crashed, strict=True)), return_exceptions=True
    )
    # As in reconcile: every write (journal, counters, links, due times) is conditioned
    # on the leases; a lease lost before EXEC drops that command's writes.
    counts = ctx.workqueue.fenced(
        me,
        claimed,
        lambda pipe, held, clock: _queue_writes(
            ctx, pipe, me, claimed, records, results, attempts_raw, before, held
        ),
    )
    ctx.calls.clear()  # flushed with the batch
    if s.min_replicas and counts["accepted"] + counts["rejected"]:
        try:
            replication.confirm(connection, s.min_replicas, s.replica_timeout_ms)
        except replication.NotReplicated as exc:
            # the SENT before it is on the replicas: after a failover the command is looked
            # up, never sent again; said, so a caller's --wait is read with care
            log.warning("command outcome not yet on the replicas", extra={"error": str(exc)})
    return counts


def _queue_writes(
    ctx: Context,
    pipe: redis.client.Pipeline,
    me: str,
    claimed: list[str],
    records: list[CommandRecord | None],
    results: list[Any],
    attempts_raw: list[int],
    before: Sequence[tuple[CommandState | None, bool]],
    held: list[bool],
) -> dict[str, int]:
    s = ctx.settings
    counts = {"accepted": 0, "rejected": 0, "retried": 0, "dead": 0, "double_booked": 0}
    now = datetime.now(UTC)
    for key, record, result, att, (old, doubled), mine in zip(
        claimed, records, results, attempts_raw, before, held, strict=True
    ):
        if not mine or isinstance(result, LeaseLost):
            continue  # the worker that holds the lease now owns the command
        attempts = att
        if isinstance(result, Outcome) and old != result.record.state:
            pipe.hincrby(keys.COMMAND_STATES, str(old), -1)
            pipe.hincrby(keys.COMMAND_STATES, str(result.record.state), 1)
            _reindex(pipe, result.record, old)
        if record is None:
            ctx.workqueue.complete(pipe, key, me, 0, "ok")
            continue
        if isinstance(result, Outcome):
            save(pipe, result.record)
            if result.orphaned:
                pipe.zadd(keys.COMMAND_ATTENTION, {record.externalId: workqueue.now_ms()})
                pipe.hincrby(keys.COUNTERS, "orphaned-create", 1)
            if result.record.doubleBooking and not doubled:
                pipe.zadd(keys.COMMAND_ATTENTION, {record.externalId: workqueue.now_ms()})
                pipe.hincrby(keys.COUNTERS, "double-booking", 1)
                counts["double_booked"] += 1
            if result.done:
                if not result.finished:
                    _finish(pipe, ctx, result.record, counts)
                if result.audit_in is not None:  # accepted; one more look at the partner later
                    delay_ms = int(result.audit_in * 1000)
                    ctx.workqueue.complete(pipe, key, me, 0, "poll", delay_ms)
                else:
                    ctx.workqueue.complete(pipe, key, me, 0, "ok")
                continue
            if result.waiting:  # nothing was attempted: no attempt spent
                ctx.workqueue.complete(
                    pipe, key, me, 0, "poll", int((result.retry_after or 1) * 1000)
                )
                continue
            retry_after = result.retry_after
            error: BaseException = Retryable(f"command {record.externalId}: {result.record.state}")
        elif isinstance(result, RateLimited):  # nothing sent: due when the budget allows
            delay_ms = int((result.retry_after or 1) * 1000)
            ctx.workqueue.complete(pipe, key, me, 0, "poll", delay_ms)
            continue
        else:
            retry_after = getattr(result, "retry_after", None)
            error = result  # lookup failed: the state stays as it was
        delay = retry.delay_ms(
            s, attempts, retryable=not isinstance(error, Crashed), retry_after=retry_after
        )
        if delay is not None:
            ctx.workqueue.complete(pipe, key, me, 0, "retry", delay)
            counts["retried"] += 1
        else:
            _release_scope(pipe, ctx, record)
            ctx.workqueue.bury(
                pipe, key, me, error, attempts + 1, now, retention=s.dlq_retention, reason="command"
            )
            counts["dead"] += 1
            log.warning(
                "command gave up",
                extra={"externalId": record.externalId, "state": str(record.state)},
            )
    metrics.count_calls(pipe, dict(ctx.calls))
    return counts


def _release_scope(pipe: redis.client.Pipeline, ctx: Context, record: CommandRecord) -> None:
    """A final (or dead-lettered) create without an externalId frees its scope."""
    kind = ctx.catalog.commands[record.kind]
    if kind.scope:
        pipe.eval(_RELEASE, 1, _scope_key(kind, record), record.externalId)


# KEYS[1]: a command scope; ARGV[1]: the externalId that may release it
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _reindex(pipe: redis.client.Pipeline, record: CommandRecord, old: Any) -> None:
    """The command moves from its old state's index to its new one's."""
    pipe.zrem(keys.command_index(record.kind, str(old)), record.externalId)
    submitted = int(record.createdAt.timestamp() * 1000)
    pipe.zadd(keys.command_index(record.kind, str(record.state)), {record.externalId: submitted})


@dataclass
class Page:
    records: list[CommandRecord]
    next: paging.Cursor | None  # None: the last page


def page(
    connection: redis.Redis,
    catalog: partner.Catalog,
    *,
    partner_name: str | None = None,
    kind: str | None = None,
    state: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = 50,
    cursor: paging.Cursor | None = None,
) -> Page:
    """One page of journaled commands, newest submitted first, from the per-kind-and-state
    indexes the filters name: O(page × indexes), whatever the journal holds."""
    kinds = [
        c.name for c in catalog.commands.values()
        if (kind is None or c.name == kind) and (partner_name is None or c.partner == partner_name)
    ]  # fmt: skip
    states = [state] if state else [str(s) for s in CommandState]
    indexes = [paging.Index(keys.command_index(k, s)) for k in kinds for s in states]
    high = min(until_ms if until_ms is not None else 2**62, cursor.ms if cursor else 2**62)
    shown, more = paging.newest(
        connection, indexes, high=high, low=since_ms or 0, limit=limit, cursor=cursor
    )
    raws = read(connection, [x for _, x in shown])
    records = [r for r in map(decode, raws) if r is not None]
    return Page(records, paging.Cursor(*shown[-1]) if more and shown else None)


FINAL_STATES = (CommandState.ACCEPTED, CommandState.REJECTED)


def forget(
    connection: redis.Redis, catalog: partner.Catalog, before_ms: int, limit: int = 500
) -> int:
    """Remove finished commands submitted before `before_ms` from the journal (record,
    indexes, state count, the aliases they gave), oldest first; returns how many. Their entity's link to them goes
    with the entity's tombstone (store.forget)."""
    forgotten = 0
    for kind in catalog.commands.values():
        for state in FINAL_STATES:
            index = keys.command_index(kind.name, state)
            gone = replies.texts(connection.zrangebyscore(index, "-inf", before_ms, start=0,
                                                          num=limit - forgotten))  # fmt: skip
            if not gone:
                continue
            records = [decode(raw) for raw in read(connection, gone)]
            pipe = connection.pipeline(transaction=True)
            for x, record in zip(gone, records, strict=True):
                pipe.hdel(*keys.journal(x))
                for _, ident in aliases(kind, record) if record else ():
                    pipe.hdel(*keys.alias(kind.partner, ident))
            pipe.delete(*(keys.command(x) for x in gone))
            pipe.zrem(keys.COMMANDS, *gone)  # what a store written before the indexes has
            pipe.zrem(index, *gone)
            pipe.hincrby(keys.COMMAND_STATES, str(state), -len(gone))
            pipe.execute()
            forgotten += len(gone)
            if forgotten >= limit:
                return forgotten
    return forgotten


def _finish(
    pipe: redis.client.Pipeline, ctx: Context, record: CommandRecord, counts: dict[str, int]
) -> None:
    kind = ctx.catalog.commands[record.kind]
    _release_scope(pipe, ctx, record)
    if record.state == CommandState.ACCEPTED and record.entityId:
        entity_key = keys.entity_key(kind.partner, kind.entity_kind, record.entityId)
        store.link(pipe, kind.partner, record.externalId, entity_key)
        for name, ident in aliases(kind, record):  # they go with the journal entry (forget)
            pipe.hset(*keys.alias(kind.partner, ident), f"{name}={entity_key}")
        # reconcile right away; webhooks keep it current from then on
        ctx.workqueue.touch_on(pipe, [entity_key])
        counts["accepted"] += 1
        log.info("command accepted", extra={"externalId": record.externalId, "entity": entity_key})
    elif record.state == CommandState.REJECTED:
        counts["rejected"] += 1
        log.info(
            "command rejected",
            extra={
                "externalId": record.externalId,
                "status": record.rejection.status if record.rejection else None,
            },
        )


def aliases(kind: CommandKind, record: CommandRecord) -> list[tuple[str, str]]:
    """(name, id) of each other id the create's answer gave its entity (Saxo's SignUpId)."""
    return [
        (n, str(record.result[n])) for n in kind.aliases if record.result and record.result.get(n)
    ]


def wait(connection: redis.Redis, external_id: str, timeout: float) -> CommandRecord | None:
    deadline = time.monotonic() + timeout
    while True:
        record = load(connection, external_id)
        if record is None or record.state.final or time.monotonic() >= deadline:
            return record
        time.sleep(0.1)
