"""Retention (#17): final-state entities leave Redis PARTNERSYNC_RETENTION_DAYS after their
last change, each leaving a tombstone; a late event for an evicted entity is re-fetched and
never re-opens its final state."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import redis

from partnersync import decide, keys, partner, retention, store
from partnersync.config import load
from schemas.lifecycle import Decision
from tests.conftest import System, wait_for
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
