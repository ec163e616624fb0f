"""End to end: transfers created at the sandbox reach their final state in the store,
driven only by webhooks the sandbox delivered over HTTP and real worker processes."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest

from partnersync import dlq, keys, store
from tests.conftest import System, wait_for
from tests.handlers_fixture import CALLS

pytestmark = pytest.mark.e2e


def key(transfer_id: str) -> str:
    return keys.entity_key("tradevest", "transfer", transfer_id)


def settled(system: System, transfer_id: str, status: str):
    def check():
        record = store.load(system.r, [key(transfer_id)])[0]
        return record if record is not None and record.status == status else None

    return wait_for(check, timeout=20, what=f"{transfer_id} to reach {status}")


def test_transfers_reach_their_final_state(system: System) -> None:
    fx = system.fixtures()
    processed = system.create_transfer(
        customerProductId=fx["balanceAccountId"],
        amount=12.5,
        reference="ok",
        externalId=f"e2e-{uuid.uuid4()}",
    )
    rejected = system.create_transfer(
        customerProductId=fx["balanceAccountId"],
        amount=99_999_999,
        reference="too much",
        externalId=f"e2e-{uuid.uuid4()}",
    )
    invalid = system.create_transfer(
        customerProductId=str(uuid.uuid4()),
        amount=5,
        reference="unknown product",
        externalId=f"e2e-{uuid.uuid4()}",
    )
    for transfer_id, status in (
        (processed, "PROCESSED"),
        (rejected, "REJECTED"),
        (invalid, "INVALID"),
    ):
        record = settled(system, transfer_id, status)
        truth = system.partner_transfer(transfer_id)
        assert record.status == truth["transferStatus"]
        assert record.externalId == truth["externalId"]
        # the same instant to the millisecond (a string prefix failed when the partner's
        # milliseconds were .000: Python's isoformat then leaves them out)
        partner_time = datetime.fromisoformat(truth["modifiedOn"].replace("Z", "+00:00"))
        assert abs((record.modifiedOn - partner_time).total_seconds()) < 0.001
        data = json.loads(bytes(record.data))
        assert data["transferId"] == transfer_id and data["amount"] == truth["amount"]
        assert store.by_external_id(system.r, "tradevest", truth["externalId"]) == key(transfer_id)

    rejected_record = store.load(system.r, [key(rejected)])[0]
    assert json.loads(bytes(rejected_record.data))["rejectReason"] == "INSUFFICIENT_BALANCE"
    invalid_record = store.load(system.r, [key(invalid)])[0]
    assert invalid_record.refusal.code == "CUSTOMER_PRODUCT_NOT_FOUND_ERROR"
    # every webhook answered as Tradevest documents it (200 OK), none retried for it
    webhooks = system.http.get(system.sandbox + "/_sandbox/ledger").json()["webhooks"]
    assert set(webhooks["answers"]) == {"200"} and webhooks["undocumented"] == 0, webhooks

    # history is forward-only and ends in the final state
    history = store.history(system.r, key(processed))
    assert history[-1].to == "PROCESSED"
    assert all(t.from_ != "PROCESSED" for t in history)

    # the change stream carries every stored transition
    changes = system.r.xrange(keys.CHANGES)
    finals = {f[b"key"].decode(): f[b"to"].decode() for _, f in changes}
    assert finals[key(processed)] == "PROCESSED" and finals[key(invalid)] == "INVALID"

    # the user handler ran once, after PROCESSED was stored
    calls = [c.decode() for c in system.r.lrange(CALLS, 0, -1)]
    assert [c for c in calls if c.startswith(key(processed))] == [
        f"{key(processed)}:{history[-1].from_}>PROCESSED"
    ]

    listing = system.cli("entities", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = [json.loads(line) for line in listing.stdout.splitlines()]
    assert {(row["id"], row["status"]) for row in rows} >= {
        (processed, "PROCESSED"),
        (rejected, "REJECTED"),
        (invalid, "INVALID"),
    }
    assert {
        "key",
        "partner",
        "kind",
        "id",
        "externalId",
        "status",
        "modifiedOn",
        "updatedAt",
    } <= set(rows[0])


def notification(transfer_id: str, status: str, modified: str, kind: str = "UPDATED") -> bytes:
    return json.dumps(
        {
            "transferId": transfer_id,
            "status": status,
            "modifiedOn": modified,
            "notificationType": kind,
        }
    ).encode()


def test_duplicates_and_out_of_order_deliveries(system: System) -> None:
    fx = system.fixtures()
    # deregister the sandbox's deliveries for this test: we deliver by hand
    system.http.delete(
        system.sandbox + "/tradevest/webhooks/TRANSFER_NOTIFICATION",
        headers={"Authorization": f"Bearer {system.token()}"},
    )
    transfer_id = system.create_transfer(
        customerProductId=fx["balanceAccountId"],
        amount=1,
        reference="manual",
        externalId=f"e2e-{uuid.uuid4()}",
    )
    truth = wait_for(
        lambda: (t := system.partner_transfer(transfer_id))["transferStatus"] == "PROCESSED" and t,
        what="sandbox to process",
    )
    processed = notification(transfer_id, "PROCESSED", truth["modifiedOn"])
    answers = [
        system.deliver("transfer-notification", processed).headers["partnersync-outcome"]
        for _ in range(3)
    ]
    assert answers == ["accepted", "duplicate", "duplicate"]
    settled(system, transfer_id, "PROCESSED")
    # PENDING arrives late (older modifiedOn): nothing moves back, no new history
    pending = notification(transfer_id, "PENDING", "2020-01-01T00:00:00Z", "CREATED")
    assert (
        system.deliver("transfer-notification", pending).headers["partnersync-outcome"]
        == "accepted"
    )
    wait_for(lambda: system.r.zscore(keys.DIRTY, key(transfer_id)) is None, what="drain")
    record = store.load(system.r, [key(transfer_id)])[0]
    assert record.status == "PROCESSED"
    history = store.history(system.r, key(transfer_id))
    assert [t.to for t in history] == ["PROCESSED"]  # one entry: 3 copies + a stale one
    system.cli("register-webhooks", "--url", system.receiver)


def test_rejected_update_is_recorded_without_changing_state(system: System) -> None:
    fx = system.fixtures()
    transfer_id = system.create_transfer(
        customerProductId=fx["balanceAccountId"],
        amount=2,
        reference="r",
        externalId=f"e2e-{uuid.uuid4()}",
    )
    settled(system, transfer_id, "PROCESSED")
    rejection = json.dumps(
        {
            "transferId": transfer_id,
            "notificationType": "VALIDATION_ERROR",
            "validationError": {
                "errorType": "UPDATE_NOT_ALLOWED",
                "description": "already processed",
            },
        }
    ).encode()
    assert system.deliver("transfer-notification", rejection).status_code == 200
    record = wait_for(
        lambda: (rec := store.load(system.r, [key(transfer_id)])[0]).rejections and rec,
        what="rejection recorded",
    )
    assert record.status == "PROCESSED"
    assert record.rejections[0].refusal.code == "UPDATE_NOT_ALLOWED"
    assert [t.to for t in store.history(system.r, key(transfer_id))][-1] == "PROCESSED"


def test_unknown_entity_is_retried_then_dead_lettered_and_replayable(system: System) -> None:
    ghost = str(uuid.uuid4())  # the partner has never heard of it: GET answers 404
    content = notification(ghost, "PENDING", "2026-01-01T00:00:00Z")
    assert (
        system.deliver("transfer-notification", content).headers["partnersync-outcome"]
        == "accepted"
    )
    letters = wait_for(lambda: dlq.all_letters(system.r), timeout=30, what="dead letter")
    (letter,) = letters
    assert letter.entity == key(ghost) and letter.attempts == 3  # PARTNERSYNC_MAX_ATTEMPTS
    assert "404" in letter.error and letter.events[0].body == content.decode()
    assert system.r.zscore(keys.DIRTY, key(ghost)) is None  # not retried forever
    listing = system.cli("dlq", "list", "--json")
    assert json.loads(listing.stdout.splitlines()[0])["entity"] == key(ghost)
    shown = system.cli("dlq", "show", letter.id)
    assert "NotVisible" in shown.stdout and "Traceback" in shown.stdout

    replayed = system.cli("dlq", "replay", letter.id, "--json")
    summary = json.loads(replayed.stdout)
    assert summary["requeued"] == 1 and summary["entities_failed_again"] == 1  # still unknown
    assert replayed.returncode == 1  # a replay that failed again says so


def test_failing_handler_is_dead_lettered_without_undoing_the_state(system: System) -> None:
    fx = system.fixtures()
    transfer_id = system.create_transfer(
        customerProductId=fx["balanceAccountId"],
        amount=3,
        reference="r",
        externalId=f"fail-handler-{uuid.uuid4()}",
    )
    settled(system, transfer_id, "PROCESSED")
    (letter,) = wait_for(lambda: dlq.all_letters(system.r), what="handler dead letter")
    assert letter.reason == "handler" and letter.transition.to == "PROCESSED"
    assert "planted by the test" in letter.error
