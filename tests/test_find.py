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
    done = system.cli("entities", "find", ident, "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_every_kind_of_id_leads_to_its_entity(system: System) -> None:
    account = system.fixtures()["balanceAccountId"]
    submitted = system.cli(
        "command", "submit", "transfer", "--key", f"k-{uuid.uuid4()}", "--wait", "30", "--json",
        "--data", json.dumps({"customerProductId": account, "amount": 3, "reference": "find"}),
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    external_id = json.loads(submitted.stdout)["externalId"]
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
    assert answer.status_code == 204
    delivery = answer.headers["partnersync-delivery-id"]
    assert found(system, delivery) == [
        {"what": "delivery", "entity": key, "detail": "delivery of TRANSFER_NOTIFICATION"}
    ]

    nothing = system.cli("entities", "find", f"nope-{uuid.uuid4()}")
    assert nothing.returncode == 1 and "is no stored entity's id" in nothing.stderr
