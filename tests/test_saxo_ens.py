"""Saxo ENS activities become events: resumed from the SequenceId checkpoint after a
restart, without loss or double intake; an expired checkpoint falls back to a time window;
every activity is stored, logged and handed to handlers, a margin call flagged."""

from __future__ import annotations

import msgspec
import pytest
import redis

from partners.saxo import keys as saxo_keys
from partnersync import inbox, keys
from tests.conftest import Proc, System, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.worker_env(PARTNERSYNC_ENS_INTERVAL_S="0.3")]

ACCEPTED = "ens-accepted:ENS_POSITIONS"  # each activity is an entity of its own
DUPLICATE = "ens-duplicate:ENS_POSITIONS"


def ens(system: System, **body: object) -> dict:
    return system.http.post(system.sandbox + "/_sandbox/saxo/ens", json=body).json()


def counter(system: System, name: str) -> int:
    return int(system.r.hget(keys.COUNTERS, name) or 0)


def restart_clock(system: System) -> Proc:
    system.clock.stop()
    return Proc("clock", ["clock"], dict(system.env, PARTNERSYNC_ENS_INTERVAL_S="0.3")).start()


def test_resume_after_restart_without_loss_or_duplicates(system: System) -> None:
    total = ens(system, generate=30)["byType"]["Positions"]  # (earlier tests may have made some)
    # the poll counts its intake, then keeps its checkpoint: wait for both
    checkpoint = wait_for(
        lambda: counter(system, ACCEPTED) == total and system.r.get(saxo_keys.ENS_CHECKPOINT),
        what="first 30 and their checkpoint",
    )
    system.clock.stop()
    total = ens(system, generate=20)["byType"]["Positions"]
    clock = restart_clock(system)
    try:
        wait_for(
            lambda: counter(system, ACCEPTED) == total, what="the 20 made while the clock was down"
        )
        assert counter(system, DUPLICATE) <= 1  # at most the checkpoint's own activity, re-read
        assert int(system.r.get(saxo_keys.ENS_CHECKPOINT)) > int(checkpoint)
        archived = sum(1 for _, d in inbox.scan(system.r) if d.type == "ENS_POSITIONS")
        assert archived == total
    finally:
        clock.stop()


def test_expired_checkpoint_falls_back_to_a_time_window(system: System) -> None:
    total = ens(system, generate=5)["byType"]["Positions"]
    wait_for(lambda: counter(system, ACCEPTED) == total, what="caught up")
    system.clock.stop()
    checkpoint = system.r.get(saxo_keys.ENS_CHECKPOINT).decode()
    total = ens(system, generate=10, expire_through=checkpoint)["byType"]["Positions"]
    clock = restart_clock(system)
    try:
        wait_for(
            lambda: counter(system, ACCEPTED) == total, what="the 10 new ones, via the fallback"
        )
        assert counter(system, "ens-fallback:ENS") == 1
        text = system.http.get(system.receiver + "/metrics").text
        assert (
            'partnersync_deliveries_total{event_type="ENS",outcome="fallback",source="ens"} 1.0'
            in text
        )
    finally:
        clock.stop()


def test_account_fundings_land_on_their_cash_transfer(system: System) -> None:
    from decimal import Decimal

    from partnersync import commands, workqueue
    from schemas.saxo.cash_transfers import PartnerCashTransferRequest
    from tests.conftest import settings_for

    data = PartnerCashTransferRequest(
        FromAccountKey="FUND-EUR-key==",
        ToAccountKey="CLIENT1-EUR-key==",
        Amount=Decimal("3"),
        Currency="EUR",
    )
    wq = workqueue.WorkQueue(system.r, queue="partnersync", drainers=4, lease_ms=3000)
    record, _ = commands.submit(
        system.r,
        wq,
        "cash-transfer",
        data,
        intent_key="ens-funding",
        settings=settings_for(system.env),
    )
    done = wait_for(
        lambda: (r := commands.load(system.r, record.externalId)).state.final and r, what="accepted"
    )
    key = keys.entity_key("saxo", "cash-transfer", done.entityId)

    def funding_events() -> list[str]:
        return [
            i for i, d in inbox.scan(system.r)
            if d.type == "ENS_ACCOUNT_FUNDINGS" and d.entities == (key,)
        ]  # fmt: skip

    assert (
        len(wait_for(lambda: len(funding_events()) == 2 and funding_events(), what="both fundings"))
        == 2
    )


def test_every_activity_is_stored_handled_and_margin_calls_flagged(system: System) -> None:
    """Orders, Positions, CorporateActions, MarginCalls and an AccountFundings no command of
    partnersync made are each mirrored as `saxo:activity:{SequenceId}` (status: the
    ActivityType), reach the change stream and the handlers; a margin call needs a human."""
    from tests.handlers_fixture import ACTIVITY_CALLS

    made = {}
    for activity_type in ("Orders", "CorporateActions", "MarginCalls", "AccountFundings"):
        body = ens(system, generate=1, type=activity_type)
        made[activity_type] = str(body["activities"])  # its SequenceId: the newest
    for activity_type, sequence in made.items():
        key = keys.entity_key("saxo", "activity", sequence)
        assert system.wait_status(key, activity_type, timeout=20)
    margin = keys.entity_key("saxo", "activity", made["MarginCalls"])
    assert system.r.zscore(keys.ATTENTION, margin) is not None
    calls = wait_for(
        lambda: (
            (c := {x.decode() for x in system.r.lrange(ACTIVITY_CALLS, 0, -1)})
            >= {f"{keys.entity_key('saxo', 'activity', s)}:{t}" for t, s in made.items()}
            and c
        ),
        what="a handler call per activity",
    )
    assert calls
    changes = [
        f[b"key"].decode() for _, f in system.r.xrange(keys.CHANGES, count=100_000)
        if f.get(b"key", b"").startswith(b"saxo:activity:")
    ]  # fmt: skip
    assert margin in changes
    assert counter(system, "ens-parked:ENS_MARGIN_CALLS") == 0


def test_an_account_funding_finds_its_cash_transfer_by_position(r: redis.Redis) -> None:
    """A cash transfer's positions (From/ToAccountPositionId) lead an ENS AccountFundings
    activity to it for PARTNERSYNC_DLQ_RETENTION: fields of a day's hashes, each expiring
    after that; a position an older store kept as a key of its own still reads."""
    from partners.saxo import PARTNER
    from partners.saxo import keys as saxo_keys
    from partners.saxo.ens import position_of
    from partnersync import config, partner

    settings = config.load({}, state_fallback=False)
    kind = partner.load(config.DEFAULT_PARTNERS).kinds[("saxo", "cash-transfer")]
    body = {
        "TransactionId": "1269",
        "TransferStatus": "Successful",
        "Amount": 10,
        "Currency": "EUR",
        "FromAccount": "a",
        "ToAccount": "b",
        "FromAccountPositionId": "1267",
        "ToAccountPositionId": "1268",
    }  # atr.yaml's example
    entity, _ = kind.decode(msgspec.json.encode(body))
    assert PARTNER.index is not None
    with r.pipeline() as pipe:
        PARTNER.index(pipe, kind, "saxo:cash-transfer:1269", entity, settings)
        pipe.execute()
    retention = settings.dlq_retention
    assert position_of(r, "1268", retention) == "saxo:cash-transfer:1269"
    assert position_of(r, "9999", retention) is None
    hashes = list(r.scan_iter(saxo_keys.PREFIX + "saxo:positions:*"))
    assert hashes and all(0 < r.ttl(h) <= retention + 86_400 for h in hashes)
    r.set(saxo_keys.position("555"), "saxo:cash-transfer:42", ex=60)
    assert position_of(r, "555", retention) == "saxo:cash-transfer:42"
