"""The entity store: each entity's current state and latest transitions, indexes by
partner / kind / status ordered by last change, externalId links, the change stream, and
what is left of an entity once retention evicted it (its tombstone).

Layout (key names in keys.py):
- `ps:entities:{partner}:{kind}:{bucket}` — hash id → one value per entity: a format byte,
  then the record and its latest transitions as msgpack, compressed with its kind's zstd
  dictionary (packing.py), or deflated when the kind has none and that is smaller. A field
  of one of 8,192 hashes per kind instead of a key of its own: a key costs ~130 bytes of
  Redis's own before its value, a field ~40 (or ~5 where the hash stays a listpack: raise
  hash-max-listpack-value and -entries to 1024, as `partnersync run` does). A value
  written as a key of its own (`ps:entity:{key}`) still reads, and moves on its next write.
- `ps:ix:{partner}:{kind}:{status}` — zset of entity ids by ms of their last update. A
  listing merges the few indexes its filter names (O(page)); retention reads the oldest of
  final statuses' (O(expired)).
- `ps:gone:{bucket}` — hash entity key → tombstone (final status, modifiedOn, when) of an
  evicted entity; `ps:links:{bucket}` — hash "partner:externalId" → entity key less its
  partner. Both go PARTNERSYNC_TOMBSTONE_DAYS after the eviction (`forget`). Hashing into
  8,192 buckets keeps each in Redis's compact listpack encoding up to ~8M entries (with
  hash-max-listpack-entries 1024).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import redis

from partnersync import keys, packing, paging, replies
from schemas.store import EntityRecord, Refusal, Rejection, Transition

# -- the stored form -------------------------------------------------------------------------
# array_like: a record is a msgpack array, no field names. New fields go at the END only
# (with a default), so values written before them still decode.


class _Step(msgspec.Struct, array_like=True, omit_defaults=True):
    """A transition without its entity key (the value's key names it)."""

    to: str
    at: datetime
    from_: str | None = None
    modifiedOn: datetime | None = None
    decision: str = "apply"
    source: list[str] = []


class _Stored(msgspec.Struct, array_like=True, omit_defaults=True):
    status: str
    updatedAt: datetime
    modifiedOn: datetime | None = None
    createdAt: datetime | None = None
    externalId: str | None = None
    knownStatus: bool = True
    purged: bool = False
    refusal: Refusal | None = None
    rejections: list[Rejection] = []
    data: bytes = b"null"  # the partner's JSON as it sent it
    history: list[_Step] = []


class _Tombstone(msgspec.Struct, array_like=True):
    status: str
    modifiedOn: datetime | None
    updatedAt: datetime
    externalId: str | None = None  # its link, removed with it (forget)


_PACKED, _DEFLATED, _ZSTD = b"\x01", b"\x02", b"\x03"  # the format byte
_COMPRESS_FROM = 160  # smaller values rarely deflate smaller
_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(_Stored).decode
_unpack_tombstone = msgspec.msgpack.Decoder(_Tombstone).decode
_json = msgspec.json.encode
BUCKETS = 8_192
_LUA = Path(__file__).parent / "lua"
EVICT = (_LUA / "evict.lua").read_text()
READ = (_LUA / "read.lua").read_text()
FORGET = (_LUA / "forget.lua").read_text()


@dataclass
class Stored:
    """An entity as reconcile reads it before a change: its record and latest transitions."""

    record: EntityRecord
    history: list[Transition] = field(default_factory=list)
    evicted: bool = False  # only its tombstone is left: counted and indexed nowhere
    older: bool = False  # its value is an older store's key of its own (moved on write)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _steps(history: Sequence[Transition]) -> list[_Step]:
    return [_Step(t.to, t.at, t.from_, t.modifiedOn, t.decision, t.source) for t in history]


def _transitions(key: str, steps: Sequence[_Step]) -> list[Transition]:
    return [
        Transition(
            key=key,
            from_=s.from_,
            to=s.to,
            modifiedOn=s.modifiedOn,
            at=s.at,
            decision=s.decision,
            source=s.source,
        )  # fmt: skip
        for s in steps
    ]


def packed(record: EntityRecord, history: Sequence[Transition]) -> bytes:
    """An entity's value before compression (what its kind's dictionary is trained on)."""
    return _pack(
        _Stored(
            status=record.status,
            updatedAt=record.updatedAt,
            modifiedOn=record.modifiedOn,
            createdAt=record.createdAt,
            externalId=record.externalId,
            knownStatus=record.knownStatus,
            purged=record.purged,
            refusal=record.refusal,
            rejections=record.rejections,
            data=bytes(record.data),
            history=_steps(history),
        )  # fmt: skip
    )


def encode(record: EntityRecord, history: Sequence[Transition]) -> bytes:
    """The stored value of an entity (the current layout)."""
    packed_ = packed(record, history)
    framed = packing.DICTIONARIES.compress(record.partner, record.kind, packed_)
    if framed is not None:
        return _ZSTD + framed
    if len(packed_) >= _COMPRESS_FROM:
        deflated = zlib.compress(packed_, 6, -15)  # raw deflate: no header, no checksum
        if len(deflated) < len(packed_):
            return _DEFLATED + deflated
    return _PACKED + packed_


def _body(raw: bytes) -> bytes:
    format = raw[:1]
    if format == _ZSTD:
        return packing.DICTIONARIES.decompress(raw[1:])
    return zlib.decompress(raw[1:], -15) if format == _DEFLATED else raw[1:]


def decode(key: str, raw: Any) -> Stored | None:
    """An entity's stored value (None when there is none)."""
    if raw is None:
        return None
    s = _unpack(_body(raw))
    partner, kind, id = keys.split_entity_key(key)
    record = EntityRecord(
        key=key, partner=partner, kind=kind, id=id, status=s.status, modifiedOn=s.modifiedOn,
        updatedAt=s.updatedAt, createdAt=s.createdAt, externalId=s.externalId,
        knownStatus=s.knownStatus, purged=s.purged, refusal=s.refusal,
        rejections=s.rejections, data=msgspec.Raw(s.data),
    )  # fmt: skip
    return Stored(record, _transitions(key, s.history))


def value_bucket(entity_key: str) -> tuple[str, str]:
    """The hash holding the entity's value, and its field there (the id)."""
    partner, kind, id = keys.split_entity_key(entity_key)
    return keys.entities(partner, kind, zlib.crc32(id.encode()) % BUCKETS), id


def bucket(entity_key: str) -> str:
    """The hash holding the entity's tombstone, if it has one."""
    return keys.gone(zlib.crc32(entity_key.encode()) % BUCKETS)


def _link_field(partner: str, external_id: str) -> str:
    return f"{partner}:{external_id}"


def link_bucket(partner: str, external_id: str) -> str:
    """The hash holding the externalId's link to its entity."""
    return keys.links(zlib.crc32(_link_field(partner, external_id).encode()) % BUCKETS)


def link(pipe: redis.client.Pipeline, partner: str, external_id: str, entity_key: str) -> None:
    """Queue the externalId → entity link (never reusable at the partner: kept for good)."""
    # the entity key less its partner (the field names it): ~10 bytes a link
    value = entity_key.removeprefix(f"{partner}:")
    pipe.hset(link_bucket(partner, external_id), _link_field(partner, external_id), value)


def linked_key(partner: str, raw: Any) -> str | None:
    """The entity key a link's stored value names (an older store kept the whole key)."""
    value = replies.optional_text(raw)
    if value is None or value.startswith(f"{partner}:"):
        return value
    return f"{partner}:{value}"


def queue_by_external_id(pipe: redis.client.Pipeline, partner: str, external_id: str) -> None:
    """Queue the read of the entity key an externalId is linked to (`linked_key`)."""
    pipe.hget(link_bucket(partner, external_id), _link_field(partner, external_id))


def decode_tombstone(key: str, raw: Any) -> EntityRecord:
    """An evicted entity as its tombstone keeps it: final status, modifiedOn, last update."""
    t = _unpack_tombstone(raw)
    partner, kind, id = keys.split_entity_key(key)
    return EntityRecord(
        key=key, partner=partner, kind=kind, id=id, status=t.status, modifiedOn=t.modifiedOn,
        updatedAt=t.updatedAt,
    )  # fmt: skip


def _tombstone(key: str, raw: Any) -> Stored:
    return Stored(decode_tombstone(key, raw), evicted=True)


# -- reading ---------------------------------------------------------------------------------


def load(connection: redis.Redis, entity_keys: Sequence[str]) -> list[EntityRecord | None]:
    """The stored records (None where there is none, evicted entities included)."""
    if not entity_keys:
        return []
    return [
        s.record if s is not None and not s.evicted else None for s in read(connection, entity_keys)
    ]


def read_queue(pipe: redis.client.Pipeline, entity_keys: Sequence[str]) -> None:
    """Queue what `read_replies` turns into each entity's `Stored`: one script reading each
    value, else its tombstone (lua/read.lua)."""
    script_keys: list[str] = []
    args: list[str] = []
    for key in entity_keys:
        values, id = value_bucket(key)
        script_keys += [values, keys.entity(key), bucket(key)]
        args += [id, key]
    pipe.eval(READ, len(script_keys), *script_keys, *args)


def read_replies(
    connection: redis.Redis, entity_keys: Sequence[str], replies_: list[Any]
) -> list[Stored | None]:
    """The entities `read_queue` asked for (its one reply): a stored one, a tombstone, or
    None."""
    got = replies_[0]
    out: list[Stored | None] = []
    for n, key in enumerate(entity_keys):
        raw, tomb, older = got[3 * n], got[3 * n + 1], got[3 * n + 2]
        stored = decode(key, raw)
        if stored is not None:
            stored.older = older is not None
        out.append(stored if stored else _tombstone(key, tomb) if tomb is not None else None)
    return out


def read(connection: redis.Redis, entity_keys: Sequence[str]) -> list[Stored | None]:
    pipe = connection.pipeline(transaction=False)
    read_queue(pipe, entity_keys)
    return read_replies(connection, entity_keys, pipe.execute())


def history(connection: redis.Redis, entity_key: str) -> list[Transition]:
    stored = read(connection, [entity_key])[0]
    return stored.history if stored is not None else []


def tombstone(connection: redis.Redis, entity_key: str) -> EntityRecord | None:
    """What is left of an evicted entity: its final status, modifiedOn and last update."""
    raw = connection.hget(bucket(entity_key), entity_key)
    return decode_tombstone(entity_key, raw) if raw is not None else None


def by_external_id(connection: redis.Redis, partner: str, external_id: str) -> str | None:
    pipe = connection.pipeline(transaction=False)
    queue_by_external_id(pipe, partner, external_id)
    return linked_key(partner, pipe.execute()[0])


# -- writing ---------------------------------------------------------------------------------


def write(
    pipe: redis.client.Pipeline,
    record: EntityRecord,
    transition: Transition | None,
    *,
    before: Stored | None,
    changes_maxlen: int,
    history_max: int = 100,
) -> None:
    """Queue the writes of one reconciled entity on `pipe` (executed as one MULTI/EXEC).
    `before` is what `read` returned for it. Its history keeps the `history_max` latest
    transitions (the change stream is the complete record, for the user's system)."""
    history = list(before.history) if before is not None else []
    if transition is not None:
        history.append(transition)
    values, id = value_bucket(record.key)
    pipe.hset(values, id, encode(record, history[-history_max:]))
    if before is not None and before.older:
        pipe.delete(keys.entity(record.key))  # an older store's value, moved to its bucket
    # the status it is counted and indexed under now (None: new, or only a tombstone)
    previous = before.record.status if before is not None and not before.evicted else None
    pipe.zadd(
        keys.index(record.partner, record.kind, record.status), {record.id: _ms(record.updatedAt)}
    )
    kind_of = f"{record.partner}:{record.kind}"
    if previous != record.status:
        pipe.hincrby(keys.ENTITY_COUNTS, f"{kind_of}:{record.status}", 1)
        if previous is not None:
            pipe.zrem(keys.index(record.partner, record.kind, previous), record.id)
            pipe.hincrby(keys.ENTITY_COUNTS, f"{kind_of}:{previous}", -1)
    if before is not None and before.evicted:
        pipe.hdel(bucket(record.key), record.key)  # stored again: no longer a tombstone
    if record.externalId:
        link(pipe, record.partner, record.externalId, record.key)
    if transition is not None:
        fields: dict[Any, Any] = {
            "key": record.key,
            "partner": record.partner,
            "kind": record.kind,
            "id": record.id,
            "from": transition.from_ or "",
            "to": transition.to,
            "modifiedOn": transition.modifiedOn.isoformat() if transition.modifiedOn else "",
            "at": transition.at.isoformat(),
            "decision": transition.decision,
            "source": " ".join(transition.source),
            "externalId": record.externalId or "",
        }
        pipe.xadd(keys.CHANGES, fields, maxlen=changes_maxlen, approximate=True)


def watch(pipe: redis.client.Pipeline, entity_key: str, due_ms: int | None) -> None:
    """Watch an entity: re-fetch it at `due_ms` (Redis's time) unless it changes first;
    None: not any more (final, or unchanged past PARTNERSYNC_WATCH_DAYS)."""
    if due_ms is None:
        pipe.zrem(keys.WATCH, entity_key)
    else:
        pipe.zadd(keys.WATCH, {entity_key: due_ms})


def next_check(
    clock_ms: int, changed_ms: int, stale_after_s: float, watch_days: float
) -> int | None:
    """When an entity unchanged since `changed_ms` is next re-fetched: after its kind's
    threshold, then ever less often (after half the time it has been unchanged), and not at
    all once unchanged for `watch_days` — so re-fetches follow recent change, not the
    store's size (an ACTIVE customer or a BOOKED transaction is not polled for ever)."""
    unchanged = max(0, clock_ms - changed_ms)
    if unchanged > watch_days * 86_400_000:
        return None
    return clock_ms + max(int(stale_after_s * 1000), unchanged // 2)


# -- listing ---------------------------------------------------------------------------------


class Cursor(paging.Cursor):
    """Where a listing page ended: the last entity's ms of update and its key."""

    @classmethod
    def parse(
        cls, text: str, valid: Callable[[str], bool] = lambda key: key.count(":") >= 2
    ) -> Cursor:
        found = paging.Cursor.parse(text, valid)
        return cls(found.ms, found.key)


@dataclass
class Page:
    records: list[EntityRecord]
    next: Cursor | None  # None: this was the last page
    total: int | None  # entities matching the filter (None with a time window)


def counts(connection: redis.Redis) -> dict[tuple[str, str, str], int]:
    """Stored entities per (partner, kind, status): kept on every write, O(1) to read."""
    out = {}
    for name, n in connection.hgetall(keys.ENTITY_COUNTS).items():
        partner, kind, status = replies.text(name).split(":", 2)
        out[(partner, kind, status)] = int(n)
    return out


def _indexes(
    connection: redis.Redis, partner: str | None, kind: str | None, status: str | None
) -> dict[tuple[str, str, str], int]:
    return {
        pks: n
        for pks, n in counts(connection).items()
        if n > 0
        and (partner is None or pks[0] == partner)
        and (kind is None or pks[1] == kind)
        and (status is None or pks[2] == status)
    }


def page(
    connection: redis.Redis,
    *,
    partner: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = 50,
    cursor: Cursor | None = None,
) -> Page:
    """One page of stored entities matching the filters, most recently updated first. Each
    index the filter names gives at most `limit` + 1 candidates: O(page × indexes), whatever
    the store holds."""
    indexes = _indexes(connection, partner, kind, status)
    high = min(until_ms if until_ms is not None else 2**62, cursor.ms if cursor else 2**62)
    low = since_ms if since_ms is not None else 0
    shown, more = paging.newest(
        connection, [paging.Index(keys.index(p, k, s), f"{p}:{k}:") for p, k, s in indexes],
        high=high, low=low, limit=limit, cursor=cursor,
    )  # fmt: skip
    loaded = load(connection, [key for _, key in shown])
    records = [r for r in loaded if r is not None]
    total = sum(indexes.values()) if since_ms is None and until_ms is None else None
    return Page(records, Cursor(*shown[-1]) if more and shown else None, total)


def iterate(
    connection: redis.Redis,
    *,
    partner: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    since_ms: int | None = None,
    batch: int = 500,
) -> Iterator[EntityRecord]:
    """Every stored entity matching the filters, newest first, a page at a time."""
    cursor = None
    while True:
        got = page(connection, partner=partner, kind=kind, status=status, since_ms=since_ms,
                   limit=batch, cursor=cursor)  # fmt: skip
        yield from got.records
        if got.next is None:
            return
        cursor = got.next


# -- retention ---------------------------------------------------------------------------------


def oldest(
    connection: redis.Redis, partner: str, kind: str, status: str, before_ms: int, n: int
) -> list[str]:
    """Up to `n` ids of the index's entities last updated before `before_ms`, oldest first."""
    got = connection.zrange(keys.index(partner, kind, status), "-inf", f"({before_ms}",
                            byscore=True, offset=0, num=n)  # fmt: skip
    return replies.texts(got)


def evict(
    connection: redis.Redis,
    partner: str,
    kind: str,
    status: str,
    ids: Sequence[str],
    before_ms: int,
) -> int:
    """Remove these entities (final, unchanged since `before_ms`), leaving each a tombstone
    and its externalId link. An entity a reconcile holds, or changed meanwhile, stays."""
    if not ids:
        return 0
    entity_keys = [keys.entity_key(partner, kind, i) for i in ids]
    stored = load(connection, entity_keys)
    script_keys = [
        keys.ENTITY_COUNTS, keys.index(partner, kind, status), keys.ATTENTION, keys.GONE_INDEX,
        keys.WATCH,
    ]  # fmt: skip
    args: list[Any] = [f"{partner}:{kind}:{status}", before_ms]
    for id, key, record in zip(ids, entity_keys, stored, strict=True):
        script_keys += [value_bucket(key)[0], keys.entity(key), keys.lease(key), bucket(key)]
        tomb = b""
        if record is not None:
            tomb = _pack(_Tombstone(record.status, record.modifiedOn, record.updatedAt,
                                    record.externalId))  # fmt: skip
        args += [id, key, tomb]
    return int(connection.eval(EVICT, len(script_keys), *script_keys, *args))


def forget(connection: redis.Redis, before_ms: int, limit: int = 500) -> int:
    """Remove the tombstones (and their externalId links and command links) of entities
    evicted before `before_ms`, oldest first; returns how many. An entity stored again
    since (a late event) keeps its links."""
    gone = replies.texts(connection.zrangebyscore(keys.GONE_INDEX, "-inf", before_ms,
                                                  start=0, num=limit))  # fmt: skip
    if not gone:
        return 0
    pipe = connection.pipeline(transaction=False)
    for key in gone:
        pipe.hget(bucket(key), key)
    tombs = pipe.execute()
    script_keys = [keys.GONE_INDEX]
    args: list[Any] = []
    for key, raw in zip(gone, tombs, strict=True):
        external_id = _unpack_tombstone(raw).externalId if raw is not None else None
        partner = keys.split_entity_key(key)[0]
        links = link_bucket(partner, external_id) if external_id else bucket(key)
        command_links, id = keys.command_link(key)
        script_keys += [bucket(key), links, command_links, keys.older_command_link(key)]
        args += [key, _link_field(partner, external_id) if external_id else "", id]
    return int(connection.eval(FORGET, len(script_keys), *script_keys, *args))
