"""The entity store's own bounds (#17, in part): an entity's history keeps the latest
PARTNERSYNC_HISTORY_MAX transitions; the change stream keeps them all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis

from partnersync import keys, store
from partnersync.config import ConfigError, load
from schemas.store import EntityRecord, Transition


def test_history_is_capped_oldest_first(r: redis.Redis) -> None:
    key = "tradevest:natural-person:np-1"
    statuses = ["CREATED", "PENDING", "REVIEW", "ACTIVE", "DECEASED"]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    previous = None
    for n, status in enumerate(statuses):
        at = start + timedelta(minutes=n)
        record = EntityRecord(key=key, partner="tradevest", kind="natural-person", id="np-1",
                              status=status, modifiedOn=at, updatedAt=at)  # fmt: skip
        transition = Transition(key=key, from_=previous, to=status, modifiedOn=at, at=at)
        with r.pipeline() as pipe:
            store.write(pipe, record, transition, before=store.read(r, [key])[0],
                        changes_maxlen=1000, history_max=3)  # fmt: skip
            pipe.execute()
        previous = status
    assert [t.to for t in store.history(r, key)] == ["REVIEW", "ACTIVE", "DECEASED"]
    assert r.xlen(keys.CHANGES) == len(statuses)  # the stream has every transition


def test_history_cap_is_a_setting() -> None:
    assert load({"PARTNERSYNC_HISTORY_MAX": "7"}, state_fallback=False).history_max == 7
    with pytest.raises(ConfigError, match="PARTNERSYNC_HISTORY_MAX=0"):
        load({"PARTNERSYNC_HISTORY_MAX": "0"}, state_fallback=False)


def put(r: redis.Redis, key: str, status: str, at: datetime, **extra: object) -> None:
    """Store `key` in `status` as reconcile does: read, then write with what was read."""
    partner, kind, id = keys.split_entity_key(key)
    before = store.read(r, [key])[0]
    record = EntityRecord(key=key, partner=partner, kind=kind, id=id, status=status,
                          modifiedOn=at, updatedAt=at, **extra)  # type: ignore[arg-type]  # fmt: skip
    previous = before.record.status if before and not before.evicted else None
    transition = Transition(key=key, from_=previous, to=status, modifiedOn=at, at=at)
    with r.pipeline() as pipe:
        store.write(pipe, record, transition, before=before, changes_maxlen=1000)
        pipe.execute()


def walk(r: redis.Redis, limit: int, **filters: object) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        got = store.page(r, limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
        assert len(got.records) <= limit
        seen += [rec.key for rec in got.records]
        if got.next is None:
            return seen
        cursor = store.Cursor.parse(got.next.encode())


def test_pages_walk_every_match_once_newest_first(r: redis.Redis) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    expected: dict[str, tuple[int, str]] = {}
    statuses = ["PROCESSED", "REJECTED", "PENDING"]
    for n in range(14):
        key = f"tradevest:transfer:t-{n:02d}"
        at = start + timedelta(seconds=n if n < 10 else 10)  # 4 updated in the same ms
        put(r, key, statuses[n % 3], at)
        expected[key] = (int(at.timestamp() * 1000), key)
    put(r, "tradevest:natural-person:np-1", "ACTIVE", start)
    newest_first = sorted(expected, key=lambda k: expected[k], reverse=True)

    for limit in (1, 3, 4, 50):
        assert walk(r, limit, kind="transfer") == newest_first
    assert store.page(r, kind="transfer", limit=2).total == 14
    assert walk(r, 2, partner="tradevest", status="PROCESSED") == [
        k for k in newest_first if int(k[-2:]) % 3 == 0
    ]
    assert walk(r, 5) == [*newest_first, "tradevest:natural-person:np-1"]
    window = {"since_ms": expected["tradevest:transfer:t-03"][0],
              "until_ms": expected["tradevest:transfer:t-06"][0]}  # fmt: skip
    assert walk(r, 2, kind="transfer", **window) == [
        f"tradevest:transfer:t-0{n}" for n in (6, 5, 4, 3)
    ]

    # a change of status moves the entity to its new index and its count with it
    put(r, "tradevest:transfer:t-02", "PROCESSED", start + timedelta(minutes=5))
    assert "tradevest:transfer:t-02" not in walk(r, 10, status="PENDING")
    assert walk(r, 1, status="PROCESSED")[0] == "tradevest:transfer:t-02"
    counted = store.counts(r)
    assert counted[("tradevest", "transfer", "PENDING")] == 3
    assert counted[("tradevest", "transfer", "PROCESSED")] == 6


def test_a_cursor_that_no_listing_printed_is_refused() -> None:
    for text in ("", "abc", "12", "12.nokey", "x.tradevest:transfer:1"):
        with pytest.raises(ValueError, match="not a cursor"):
            store.Cursor.parse(text)


def test_stored_value_is_compact(r: redis.Redis) -> None:
    """The stored value round-trips every field, and is smaller than the JSON of them."""
    import msgspec

    key = "tradevest:transfer:3f0c2b8e-7a51-4cc0-9d8e-0b7f1a2c3d4e"
    at = datetime(2026, 2, 1, 12, 30, 0, 123456, tzinfo=UTC)
    data = {"transferId": key.rsplit(":", 1)[1], "transferStatus": "PROCESSED", "amount": 125.5,
            "currency": "EUR", "reference": "Invoice 7", "externalId": "x-7",
            "modifiedOn": "2026-02-01T12:30:00.123456Z"}  # fmt: skip
    record = EntityRecord(key=key, partner="tradevest", kind="transfer", id=key.rsplit(":", 1)[1],
                          status="PROCESSED", modifiedOn=at, updatedAt=at, createdAt=at,
                          externalId="x-7", data=msgspec.Raw(msgspec.json.encode(data)))  # fmt: skip
    history = [Transition(key=key, from_=None, to="PENDING", at=at, source=["1-0"]),
               Transition(key=key, from_="PENDING", to="PROCESSED", modifiedOn=at, at=at)]  # fmt: skip
    value = store.encode(record, history)
    back = store.decode(key, value)
    assert back is not None and back.record == record and back.history == history
    assert len(value) < 0.7 * (len(msgspec.json.encode(record)) + sum(
        len(msgspec.json.encode(t)) for t in history))  # fmt: skip


def test_the_transactions_sweep_visits_active_customers_and_rotates_the_rest(
    r: redis.Redis,
) -> None:
    """Tradevest's transactions have no webhook: each sweep lists the customers active
    within its window, and a slice of the dormant ones that covers them all within half
    the window (#17: a sweep's work follows live work, not the whole history)."""
    from partners.tradevest import keys as tradevest_keys
    from partners.tradevest.sweeper import customers_due

    day = 86_400_000
    now = 100 * day
    r.zadd(tradevest_keys.ACTIVITY, {f"old-{n:03d}": n for n in range(240)})
    r.zadd(tradevest_keys.ACTIVITY, {"busy-1": now - 1000, "busy-2": now - day})
    # a sweep every 12 h with a 2-day window: a rotation takes at most 2 sweeps
    first = customers_due(r, now, 2, 12 * 3600, budget=1000)
    assert {"busy-1", "busy-2"} <= set(first) and len(first) == 2 + 120
    second = customers_due(r, now, 2, 12 * 3600, budget=1000)
    dormant = {f"old-{n:03d}" for n in range(240)}
    assert (set(first) | set(second)) - {"busy-1", "busy-2"} == dormant
    third = customers_due(r, now, 2, 12 * 3600, budget=1000)
    assert set(third) == set(first)  # round again


def test_a_sweep_lists_at_most_its_budget_of_customers(r: redis.Redis) -> None:
    """Partner calls follow the budget, not the number of customers (#38): 5,000 active
    customers and 5,000 dormant ones, a budget of 100 listings a sweep — the newest active
    first, a tenth of it kept for the dormant rotation, which goes on where it stopped."""
    from partners.tradevest import keys as tradevest_keys
    from partners.tradevest.sweeper import customers_due

    day = 86_400_000
    now = 100 * day
    r.zadd(tradevest_keys.ACTIVITY, {f"old-{n:04d}": n for n in range(5000)})
    r.zadd(tradevest_keys.ACTIVITY, {f"busy-{n:04d}": now - 1000 * n for n in range(5000)})
    first = customers_due(r, now, 2, 60, budget=100)
    assert len(first) == 100
    busy = [c for c in first if c.startswith("busy-")]
    assert busy == [f"busy-{n:04d}" for n in range(90)]  # the most recently active
    second = customers_due(r, now, 2, 60, budget=100)
    old = [c for c in first + second if c.startswith("old-")]
    assert old == [f"old-{n:04d}" for n in range(20)]  # the rotation went on


def test_a_value_of_an_older_store_reads_moves_on_write_and_evicts(r: redis.Redis) -> None:
    """Values are fields of per-kind bucket hashes; one written as a key of its own
    (`ps:entity:{key}`, a store from before the buckets) is read, moved to its bucket on
    the next write, and evicted like the others."""
    at = datetime(2026, 1, 5, tzinfo=UTC)
    key, other = "tradevest:transfer:old-1", "tradevest:transfer:old-2"
    for k in (key, other):
        put(r, k, "PENDING", at)
        values, id = store.value_bucket(k)
        r.set(keys.entity(k), r.hget(values, id))  # as an older store holds it
        r.hdel(values, id)
    assert [rec.status for rec in store.load(r, [key, other])] == ["PENDING", "PENDING"]
    put(r, key, "PROCESSED", at)
    assert not r.exists(keys.entity(key)) and r.hexists(*store.value_bucket(key))
    assert [t.to for t in store.history(r, key)] == ["PENDING", "PROCESSED"]
    put(r, other, "REJECTED", at)
    r.set(keys.entity(other), r.hget(*store.value_bucket(other)))
    r.hdel(*store.value_bucket(other))
    assert (
        store.evict(
            r, "tradevest", "transfer", "REJECTED", ["old-2"], int(at.timestamp() * 1000) + 1
        )
        == 1
    )
    assert not r.exists(keys.entity(other)) and store.tombstone(r, other) is not None


def test_a_link_is_stored_less_its_partner_and_an_older_whole_one_still_reads(
    r: redis.Redis,
) -> None:
    with r.pipeline() as pipe:
        store.link(pipe, "tradevest", "x-new", "tradevest:transfer:t-new")
        pipe.execute()
    assert r.hget(store.link_bucket("tradevest", "x-new"), "tradevest:x-new") == b"transfer:t-new"
    assert store.by_external_id(r, "tradevest", "x-new") == "tradevest:transfer:t-new"
    r.hset(store.link_bucket("tradevest", "x-old"), "tradevest:x-old", "tradevest:transfer:t-old")
    assert store.by_external_id(r, "tradevest", "x-old") == "tradevest:transfer:t-old"
