"""Outbound commands: never booked twice, whatever fails."""

from __future__ import annotations

import json
import signal
import threading
import uuid
from collections import Counter
from decimal import Decimal

import msgspec
import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from partnersync import commands, workqueue
from schemas.commands import CommandState
from schemas.tradevest.commands import TransferData
from tests.conftest import System, wait_for

PRODUCT = uuid.UUID("8f14e45f-ceea-4e7a-8a3b-1d6b7f0c2d11")


def transfer(
    amount: str = "1.00", reference: str = "cmd", product: uuid.UUID = PRODUCT
) -> TransferData:
    return TransferData(customerProductId=product, amount=Decimal(amount), reference=reference)


@given(st.text(min_size=1, max_size=200), st.text(min_size=1, max_size=200))
def test_external_id_is_derived_from_the_intent(key_a: str, key_b: str) -> None:
    a = commands.derive_external_id("tradevest", "transfer", key_a, transfer())
    assert a == commands.derive_external_id("tradevest", "transfer", key_a, transfer("9.99"))
    assert len(a) <= 50  # fits Saxo's ExternalReference too
    assert (a == commands.derive_external_id("tradevest", "transfer", key_b, transfer())) == (
        key_a == key_b
    )


def test_without_a_key_the_business_fields_decide() -> None:
    one = commands.derive_external_id("tradevest", "transfer", None, transfer("1.00"))
    assert one == commands.derive_external_id("tradevest", "transfer", None, transfer("1.00"))
    assert one != commands.derive_external_id("tradevest", "transfer", None, transfer("1.01"))
    assert one != commands.derive_external_id("tradevest", "digital-order", None, transfer("1.00"))


def test_command_input_is_validated_by_the_same_schema() -> None:
    with pytest.raises(msgspec.ValidationError, match="reference"):
        msgspec.json.decode(
            b'{"customerProductId":"8f14e45f-ceea-4e7a-8a3b-1d6b7f0c2d11","amount":1,"reference":""}',
            type=TransferData,
        )
    with pytest.raises(msgspec.ValidationError, match="amount"):
        msgspec.json.decode(
            b'{"customerProductId":"8f14e45f-ceea-4e7a-8a3b-1d6b7f0c2d11","amount":0.001,"reference":"r"}',
            type=TransferData,
        )


def ledger(system: System) -> dict:
    return system.http.get(system.sandbox + "/_sandbox/ledger").json()


def wq(system: System) -> workqueue.WorkQueue:
    return workqueue.WorkQueue(system.r, queue="partnersync", drainers=4, lease_ms=3000)


@pytest.mark.e2e
def test_command_is_accepted_and_its_story_told(system: System) -> None:
    record, created = commands.submit(
        system.r, wq(system), "transfer", transfer(), intent_key=f"k-{uuid.uuid4()}"
    )
    assert created and record.state == CommandState.PENDING_SEND
    done = wait_for(
        lambda: (r := commands.load(system.r, record.externalId)).state.final and r, what="final"
    )
    assert done.state == CommandState.ACCEPTED and done.attempts == 1
    key = f"tradevest:transfer:{done.entityId}"
    wait_for(lambda: system.cli("entities", "show", key).returncode == 0, what="entity reconciled")
    story = system.cli("command", "show", record.externalId, "--json")
    shown = json.loads(story.stdout)
    assert shown["state"] == "ACCEPTED" and shown["entityKey"] == key
    assert [a["action"] for a in shown["history"]] == ["send"] and shown["history"][0][
        "outcome"
    ] == "200"
    # the same intent again: linked, nothing sent
    again, created_again = commands.submit(
        system.r, wq(system), "transfer", transfer(), intent_key=record.intentKey
    )
    assert not created_again and again.externalId == record.externalId
    assert ledger(system)["createRequests"][record.externalId] == 1


@pytest.mark.e2e
def test_validation_rejection_is_surfaced_and_never_retried(system: System) -> None:
    cli = system.cli(
        "command", "submit", "traditional-order", "--key", f"k-{uuid.uuid4()}", "--wait", "20", "--json",
        "--acting-for", "0b6f7c1e-2a4d-4f7e-9c3b-5d8e1f2a3b01",
        "--data", json.dumps({"orderType": "market", "depositoryCustomerProductId": str(uuid.uuid4()),
                              "cashCustomerProductId": str(PRODUCT), "tradeSide": "BUY",
                              "isin": "DE0007164600", "quantity": 1, "exchangeCode": "NYSE"}),
    )  # fmt: skip
    assert cli.returncode == 2 and "exchangeCode" in cli.stderr  # refused before sending: schema
    body = {"gender": "FEMALE", "firstName": "Ada", "lastName": "L", "birthDay": "1990-01-01",
            "birthPlace": "X", "birthCountry": "GB", "isUsNationality": False}  # fmt: skip
    ok = system.cli(
        "command",
        "submit",
        "natural-person",
        "--key",
        f"k-{uuid.uuid4()}",
        "--data",
        json.dumps(body),
        "--wait",
        "20",
        "--json",
    )
    assert json.loads(ok.stdout)["state"] == "ACCEPTED"


@pytest.mark.e2e
def test_submit_wait_reports_the_entitys_outcome(system: System) -> None:
    """ACCEPTED is not done: a transfer the partner accepts and then finds INVALID, or
    REJECTS, makes `command submit --wait` exit 1 with the reason (#19)."""
    account = system.fixtures()["balanceAccountId"]
    cases = [
        (account, 5, 0, "PROCESSED", None),
        (str(uuid.uuid4()), 5, 1, "INVALID", "CUSTOMER_PRODUCT_NOT_FOUND_ERROR"),
        (account, 99_999_999, 1, "REJECTED", "REJECTED"),
    ]
    for product, amount, rc, status, reason in cases:
        body = {"customerProductId": product, "amount": amount, "reference": "wait"}
        done = system.cli("command", "submit", "transfer", "--key", f"k-{uuid.uuid4()}",
                          "--wait", "30", "--data", json.dumps(body))  # fmt: skip
        assert done.returncode == rc, (status, done.stdout, done.stderr)
        assert "state ACCEPTED" in done.stdout and f"status {status}" in done.stdout
        assert (reason in done.stderr) if reason else not done.stderr.strip(), done.stderr


@pytest.mark.e2e
def test_reuse_after_invalid_is_refused_before_sending(system: System) -> None:
    key = f"k-{uuid.uuid4()}"
    unknown_product = transfer(product=uuid.uuid4())
    record, _ = commands.submit(system.r, wq(system), "transfer", unknown_product, intent_key=key)
    done = wait_for(
        lambda: (r := commands.load(system.r, record.externalId)).state.final and r, what="final"
    )
    assert done.state == CommandState.ACCEPTED  # RECEIVED at the partner, INVALID afterwards
    wait_for(
        lambda: system.cli("entities", "show", f"tradevest:transfer:{done.entityId}").stdout.count(
            "INVALID"
        ),
        what="INVALID",
    )
    with pytest.raises(commands.CommandError, match="new intent key"):
        commands.submit(system.r, wq(system), "transfer", unknown_product, intent_key=key)
    cli = system.cli("command", "submit", "transfer", "--key", key, "--data",
                     json.dumps({"customerProductId": str(unknown_product.customerProductId), "amount": 1, "reference": "cmd"}))  # fmt: skip
    assert cli.returncode == 2 and "INVALID" in cli.stderr and "--key" in cli.stderr
    assert ledger(system)["createRequests"][record.externalId] == 1
    # the refusal comes with the VALIDATION_ERROR webhook, which may follow a re-GET that
    # already saw INVALID
    wait_for(
        lambda: (
            "CUSTOMER_PRODUCT_NOT_FOUND_ERROR"
            in system.cli("command", "show", record.externalId).stdout
        ),
        what="the refusal's code",
    )


@pytest.mark.e2e
def test_same_command_submitted_twice_concurrently_creates_once(system: System) -> None:
    key = f"k-{uuid.uuid4()}"
    results: list[tuple] = []
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        results.append(
            commands.submit(system.r, wq(system), "transfer", transfer(), intent_key=key)
        )

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(created for _, created in results) == 1  # one creates, the others link
    (xid,) = {r.externalId for r, _ in results}
    wait_for(lambda: commands.load(system.r, xid).state.final, what="final")
    truth = ledger(system)
    assert truth["createRequests"][xid] == 1
    assert sum(1 for e in truth["entities"] if e["externalId"] == xid) == 1


@pytest.mark.e2e
@pytest.mark.worker_env(
    PARTNERSYNC_MAX_ATTEMPTS="15", PARTNERSYNC_RETRY_SCHEDULE_S="0.2,0.4,0.8,1.6,2"
)
# 80 in `make test` (about 20 s: every kind of fault and ~8 kills), 200 in `make chaos`
@pytest.mark.parametrize("n", [80, pytest.param(200, marks=pytest.mark.long)])
def test_commands_under_faults_and_worker_kills_book_each_once(system: System, n: int) -> None:
    faults = {"timeout": 0.2, "http_5xx": 0.1, "timeout_ms": 4000}
    assert system.http.post(system.sandbox + "/_sandbox/faults", json=faults).status_code == 200
    pool = psutil.Process(system.workers.proc.pid)
    stop = threading.Event()
    kills = Counter()

    def killer() -> None:  # SIGKILL a worker every 2 s; the pool restarts it
        while not stop.wait(2.0):
            children = pool.children()
            if children:
                children[0].send_signal(signal.SIGKILL)
                kills["workers"] += 1

    run = uuid.uuid4().hex[:8]
    xids = []
    killing = threading.Thread(target=killer)
    killing.start()
    try:
        for i in range(n):
            record, created = commands.submit(
                system.r, wq(system), "transfer", transfer(), intent_key=f"{run}-{i}"
            )
            assert created
            xids.append(record.externalId)

        def all_final() -> bool:
            return all(commands.load(system.r, x).state.final for x in xids)

        wait_for(
            all_final, timeout=240, interval=1.0, what="every command to end ACCEPTED or REJECTED"
        )
    finally:
        stop.set()
        killing.join()
        system.http.post(system.sandbox + "/_sandbox/faults", json={})
        for x in [x for x in xids if not commands.load(system.r, x).state.final][:5]:
            stuck = commands.load(system.r, x)  # the story of a command that did not finish
            print(f"STUCK {x} {stuck.state} {[(a.action, a.outcome) for a in stuck.history]}")
    truth = ledger(system)
    injected = system.http.get(system.sandbox + "/_sandbox/faults").json()["injected"]
    created = Counter(e["externalId"] for e in truth["entities"] if e["externalId"] in set(xids))
    states = Counter(commands.load(system.r, x).state for x in xids)
    requests = sum(truth["createRequests"][x] for x in xids)
    print(f"\ncommands={n} accepted={states[CommandState.ACCEPTED]} rejected={states[CommandState.REJECTED]} "
          f"entities={len(created)} doubled={sum(1 for c in created.values() if c > 1)} "
          f"create_requests={requests} timeouts={injected['timeout']} http_5xx={injected['http_5xx']} "
          f"workers_killed={kills['workers']}")  # fmt: skip
    assert len(created) == n and set(created.values()) == {1}
    assert states[CommandState.ACCEPTED] == n
    assert injected["timeout"] > 0 and injected["http_5xx"] > 0 and kills["workers"] > 0


@pytest.mark.e2e
def test_a_callers_own_external_id_is_the_idempotency_key_as_given(system: System) -> None:
    """Tradevest's externalId lets the partner supply its own id (tradevest-api.md §5): a
    caller's is sent as given, found by `entities find`, and never taken twice (#37 item 3)."""
    mine = f"ledger-{uuid.uuid4()}"
    body = {"customerProductId": system.fixtures()["balanceAccountId"], "amount": "2.50",
            "reference": "own id", "externalId": mine}  # fmt: skip
    done = system.cli("command", "submit", "transfer", "--data", json.dumps(body),
                      "--wait", "30", "--json")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    shown = json.loads(done.stdout)
    assert shown["externalId"] == mine and shown["state"] == "ACCEPTED"
    assert ledger(system)["createRequests"][mine] == 1
    transfer_id = shown["entityId"]
    assert system.partner_transfer(transfer_id)["externalId"] == mine
    found = system.cli("entities", "find", mine)
    assert "command transfer ACCEPTED" in found.stdout, found.stdout
    assert f"tradevest:transfer:{transfer_id}" in found.stdout

    again = system.cli("command", "submit", "transfer", "--data", json.dumps(body), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["externalId"] == mine
    other = system.cli("command", "submit", "transfer", "--data",
                       json.dumps(dict(body, amount="3.00")))  # fmt: skip
    assert other.returncode == 2 and "already used" in other.stderr
    both = system.cli("command", "submit", "transfer", "--key", "k", "--data", json.dumps(body))
    assert both.returncode == 2 and "not both" in both.stderr
    empty = system.cli("command", "submit", "transfer", "--data",
                       json.dumps(dict(body, externalId="")))  # fmt: skip
    assert empty.returncode == 2 and "externalId" in empty.stderr
    assert ledger(system)["createRequests"][mine] == 1  # sent once, whatever came after
