"""`partnersync entities find ID`: a partner id, an externalId, a delivery id and a
command's externalId each lead to their entity, in one round trip (#17, in part)."""

from __future__ import annotations

import json
import uuid

import pytest

from partnersync import commands, keys, store
from tests.conftest import System, wait_for

pytestmark = pytest.mark.e2e


def found(system: System, ident: str) -> list[dict[str, str]]:
    # Saxo's keys are base64 and may start with '-': taken as the id all the same (cli.Parser)
    done = system.cli("entities", "find", ident, "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_every_kind_of_id_leads_to_its_entity(system: System) -> None:
    external_id = system.submit_transfer(3, "find")
    record = commands.load(system.r, external_id)
    assert record is not None and record.entityId
    key = keys.entity_key("tradevest", "transfer", record.entityId)
    wait_for(lambda: store.load(system.r, [key])[0], what="the transfer stored")

    assert {"what": "entity", "entity": key, "detail": "partner id"} in found(
        system, record.entityId
    )
    by_external = found(system, external_id)
    assert {f["what"] for f in by_external} == {"externalId", "command"}
    assert {f["entity"] for f in by_external} == {key}

    body = json.dumps({"transferId": record.entityId, "status": "PENDING",
                       "modifiedOn": "2026-01-01T10:00:00Z", "notificationType": "UPDATED"})  # fmt: skip
    answer = system.deliver("transfer-notification", body.encode())
    assert answer.status_code == 200
    delivery = answer.headers["partnersync-delivery-id"]
    assert found(system, delivery) == [
        {"what": "delivery", "entity": key, "detail": "delivery of TRANSFER_NOTIFICATION"}
    ]

    nothing = system.cli("entities", "find", f"nope-{uuid.uuid4()}")
    assert nothing.returncode == 1 and "is no stored entity's id" in nothing.stderr


def test_saxo_ids_and_an_evicted_entity(system: System) -> None:
    """ClientKey (a signup's id), SignUpId and ClientId (its create's other ids),
    TransactionId and ExternalReference (a cash transfer's) each find their entity; an entity
    retention evicted is still found, with its final status."""
    from tests.test_saxo_cash_transfers import final, funding
    from tests.test_saxo_cash_transfers import submit as submit_transfer
    from tests.test_saxo_signups import signup
    from tests.test_saxo_signups import submit as submit_signup

    created = submit_signup(system, signup(last="Findable"))
    assert created.result is not None
    signup_key = keys.entity_key("saxo", "signup", created.entityId)
    wait_for(lambda: store.load(system.r, [signup_key])[0], what="the signup stored")
    assert found(system, created.entityId) == [
        {"what": "entity", "entity": signup_key, "detail": "ClientKey"}
    ]
    for name in ("SignUpId", "ClientId"):
        assert found(system, str(created.result[name])) == [
            {"what": "alias", "entity": signup_key, "detail": f"saxo {name}"}
        ]

    reference = submit_transfer(system, funding(), f"k-{uuid.uuid4()}")
    transaction = final(system, reference).entityId
    transfer_key = keys.entity_key("saxo", "cash-transfer", transaction)
    stored = system.wait_status(transfer_key, "Successful", timeout=30)
    assert {"what": "entity", "entity": transfer_key, "detail": "TransactionId"} in found(
        system, transaction
    )
    assert {"what": "externalId", "entity": transfer_key, "detail": "saxo ExternalReference"} in (
        found(system, reference)
    )

    wait_for(lambda: not system.r.exists(keys.lease(transfer_key)), what="its reconcile done")
    cutoff = int(stored.updatedAt.timestamp() * 1000) + 1
    assert store.evict(system.r, "saxo", "cash-transfer", "Successful", [transaction], cutoff)
    (gone,) = found(system, transaction)
    assert gone["entity"] == transfer_key and gone["detail"].startswith(
        "evicted after retention: Successful"
    )


def test_list_pages_with_a_cursor(system: System) -> None:
    """`entities list` prints a page and the cursor of the next; the cursor leads on; a
    cursor no listing printed is refused with exit 2."""
    fx = system.fixtures()
    for n in range(2):
        transfer = system.create_transfer(customerProductId=fx["balanceAccountId"], amount=1,
                                          reference=f"page {n}", externalId=f"p-{uuid.uuid4()}")  # fmt: skip
        system.wait_status(keys.entity_key("tradevest", "transfer", transfer), "PROCESSED")
    first = system.cli("entities", "list", "--kind", "transfer", "--limit", "1", "--json")
    assert first.returncode == 0, first.stderr
    (row,) = [json.loads(line) for line in first.stdout.splitlines()]
    hint = first.stderr.strip().splitlines()[-1]
    assert hint.startswith("more: --cursor ")
    second = system.cli("entities", "list", "--kind", "transfer", "--limit", "1", "--json",
                        "--cursor", hint.split(" ", 2)[2])  # fmt: skip
    assert second.returncode == 0, second.stderr
    (next_row,) = [json.loads(line) for line in second.stdout.splitlines()]
    assert next_row["key"] != row["key"] and next_row["updatedAt"] <= row["updatedAt"]
    everything = system.cli("entities", "list", "--kind", "transfer", "--limit", "1", "--all")
    assert everything.returncode == 0 and row["key"] in everything.stdout
    assert next_row["key"] in everything.stdout and "more:" not in everything.stdout
    bad = system.cli("entities", "list", "--cursor", "junk")
    assert bad.returncode == 2 and "not a cursor" in bad.stderr


def test_an_alias_of_an_older_store_still_finds_its_entity(r) -> None:
    from partnersync import find, partner
    from partnersync.config import DEFAULT_PARTNERS

    r.set(keys.older_alias("saxo", "S-old"), "SignUpId=saxo:signup:CK-old==")
    got = find.find(r, partner.load(DEFAULT_PARTNERS), "S-old")
    assert [(f.what, f.entity) for f in got] == [("alias", "saxo:signup:CK-old==")]
