"""Saxo partner cash transfers: created through the journal, polled to their final state."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from decimal import Decimal

import pytest

from partnersync import commands, config, keys, store, workqueue
from schemas import strict
from schemas.commands import CommandState
from schemas.saxo.cash_transfers import PartnerCashTransferRequest
from tests.conftest import System, settings_for, wait_for

pytestmark = pytest.mark.e2e

FUNDING, CLIENT = "FUND-EUR-key==", "CLIENT1-EUR-key=="


def funding(amount: str = "10", comment: str | None = None, **extra) -> PartnerCashTransferRequest:
    return PartnerCashTransferRequest(
        FromAccountKey=FUNDING,
        ToAccountKey=CLIENT,
        Amount=Decimal(amount),
        Currency="EUR",
        Comment=comment,
        **extra,
    )


def submit(system: System, data: PartnerCashTransferRequest, key: str | None) -> str:
    wq = workqueue.WorkQueue(system.r, queue="partnersync", drainers=4, lease_ms=3000)
    record, _ = commands.submit(
        system.r, wq, "cash-transfer", data, intent_key=key, settings=settings_for(system.env)
    )
    return record.externalId


def final(system: System, xid: str):
    return wait_for(
        lambda: (r := commands.load(system.r, xid)).state.final and r,
        timeout=30,
        what="command final",
    )


def entity_status(system: System, transaction_id: str, status: str):
    key = keys.entity_key("saxo", "cash-transfer", transaction_id)
    return system.wait_status(key, status, timeout=30)


def test_cash_transfer_reaches_successful(system: System) -> None:
    xid = submit(system, funding(), f"k-{uuid.uuid4()}")
    record = final(system, xid)
    assert record.state == CommandState.ACCEPTED
    stored = entity_status(system, record.entityId, "Successful")
    assert stored.externalId == xid
    assert [t.to for t in store.history(system.r, stored.key)][-1] == "Successful"
    ledger = system.http.get(system.sandbox + "/_sandbox/ledger").json()
    assert ledger["saxoCreateRequests"][xid] == 1
    listed = system.cli("saxo", "cash-transfers", "--external-reference", xid, "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["TransactionId"], r["TransferStatus"]) for r in rows] == [
        (record.entityId, "Successful")
    ]


def test_failed_is_terminal_and_flagged_for_a_human(system: System) -> None:
    xid = submit(system, funding(comment="please FAIL"), f"k-{uuid.uuid4()}")
    record = final(system, xid)
    stored = entity_status(system, record.entityId, "Failed")
    assert system.r.zscore(keys.ATTENTION, stored.key) is not None
    status = system.cli("status")
    assert "attention" in status.stdout and stored.key in status.stdout


def test_saxo_rejection_is_surfaced_with_its_code(system: System) -> None:
    xid = submit(system, funding(amount="999999999"), f"k-{uuid.uuid4()}")
    record = final(system, xid)
    assert record.state == CommandState.REJECTED
    assert record.rejection.errorCode == "InsufficientCash" and record.rejection.status == 400
    show = system.cli("command", "show", xid)
    assert "InsufficientCash" in show.stdout


def test_funding_check_ignore_is_refused_before_sending(system: System) -> None:
    wrong_way = funding(FundingCheck="Ignore")
    with pytest.raises(commands.CommandError, match="funding account"):
        submit(system, wrong_way, f"k-{uuid.uuid4()}")
    assert not list(system.r.scan_iter(keys.PREFIX + "cmds:*"))  # nothing journaled


@pytest.mark.worker_env(PARTNERSYNC_MAX_ATTEMPTS="15", PARTNERSYNC_RETRY_SCHEDULE_S="0.1")
def test_rate_limit_is_respected(system: System) -> None:
    # the create itself is limited (the lookup before it is not): twice in a row
    post = {"fault": "rate_limit", "method": "POST", "path": "/atr/v1/partner/cashtransfers"}
    system.http.post(system.sandbox + "/_sandbox/faults", json={"script": [post, post]})
    try:
        xid = submit(system, funding("1"), f"k-{uuid.uuid4()}")
        limited = wait_for(
            lambda: [a for a in commands.load(system.r, xid).history if a.outcome == "429"],
            what="a 429",
        )
    finally:
        system.http.post(system.sandbox + "/_sandbox/faults", json={})
    record = final(system, xid)
    assert record.state == CommandState.ACCEPTED
    sends = [a for a in record.history if a.action == "send"]
    after = next(a for a in sends if a.at > limited[0].at)
    # the retry schedule says 0.1 s; X-RateLimit-Session-Reset said 1 s: the reset wins
    assert (after.at - limited[0].at).total_seconds() >= 0.95


@pytest.mark.worker_env(
    PARTNERSYNC_MAX_ATTEMPTS="15", PARTNERSYNC_RETRY_SCHEDULE_S="0.2,0.4,0.8,1.6,2"
)
def test_timeouts_after_creation_never_transfer_twice(system: System) -> None:
    n = 150
    system.http.post(
        system.sandbox + "/_sandbox/faults",
        json={"timeout": 0.2, "http_5xx": 0.1, "timeout_ms": 4000},
    )
    run = uuid.uuid4().hex[:8]
    try:
        xids = [submit(system, funding("1"), f"{run}-{i}") for i in range(n)]
        wait_for(
            lambda: all(commands.load(system.r, x).state.final for x in xids),
            timeout=180,
            interval=1,
            what="all final",
        )
    finally:
        system.http.post(system.sandbox + "/_sandbox/faults", json={})
    ledger = system.http.get(system.sandbox + "/_sandbox/ledger").json()
    ours = set(xids)
    created = Counter(e["externalId"] for e in ledger["entities"] if e["externalId"] in ours)
    injected = system.http.get(system.sandbox + "/_sandbox/faults").json()["injected"]
    print(f"\nsaxo cash transfers={n} transfers_at_saxo={len(created)} doubled={sum(c > 1 for c in created.values())} "
          f"create_requests={sum(ledger['saxoCreateRequests'][x] for x in xids)} timeouts={injected['timeout']}")  # fmt: skip
    assert len(created) == n and set(created.values()) == {1}
    assert all(commands.load(system.r, x).state == CommandState.ACCEPTED for x in xids)
    assert injected["timeout"] > 0


def test_same_cash_transfer_submitted_concurrently_is_sent_once(system: System) -> None:
    key = f"k-{uuid.uuid4()}"
    results = []
    barrier = threading.Barrier(6)

    def go() -> None:
        barrier.wait()
        results.append(submit(system, funding("2"), key))

    threads = [threading.Thread(target=go) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    (xid,) = set(results)
    final(system, xid)
    assert (
        system.http.get(system.sandbox + "/_sandbox/ledger").json()["saxoCreateRequests"][xid] == 1
    )


def test_settings_default_token_provider() -> None:
    from partners.saxo.settings import SaxoSettings

    assert SaxoSettings.of(config.load({}, state_fallback=False)).token == "sandbox"


def test_a_misspelled_field_is_refused_by_name_not_dropped() -> None:
    """atr.yaml's PartnerCashTransferRequest has additionalProperties: false; a caller's
    "Commnet" must not vanish and the transfer be booked without its comment (#35)."""
    raw = b'{"FromAccountKey":"a","ToAccountKey":"b","Amount":1,"Currency":"EUR","Commnet":"x"}'
    with pytest.raises(strict.InputError, match='unknown field "Commnet".*did you mean "Comment"'):
        strict.decode(raw, PartnerCashTransferRequest)


def test_a_callers_external_reference_is_the_idempotency_key_as_given(system: System) -> None:
    """ExternalReference is "your identifier for the transaction request"
    (saxo-partner-cash-transfers): sent as given, the command found by it (#35)."""
    mine = f"payout-{uuid.uuid4().hex[:20]}"
    xid = submit(system, funding("4", ExternalReference=mine), None)
    assert xid == mine
    record = final(system, xid)
    assert record.state == CommandState.ACCEPTED
    booked = system.http.get(
        system.sandbox + "/saxo/openapi/atr/v1/partner/cashtransfers",
        params={"ExternalReference": mine}, headers={"Authorization": "Bearer sandbox"},
    ).json()["Data"]  # fmt: skip
    assert [b["TransactionId"] for b in booked] == [record.entityId]
    found = system.cli("entities", "find", mine, "--json")
    assert found.returncode == 0 and record.entityId in found.stdout, found.stdout + found.stderr
    # the same id again: the same command, nothing sent; with another amount: refused
    assert submit(system, funding("4", ExternalReference=mine), None) == mine
    with pytest.raises(commands.CommandError, match="already used"):
        submit(system, funding("5", ExternalReference=mine), None)
    with pytest.raises(commands.CommandError, match="not both"):
        submit(system, funding("4", ExternalReference=mine), "a-key")
