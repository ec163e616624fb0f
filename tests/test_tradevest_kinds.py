"""Every Tradevest kind, created through the sandbox and reconciled to the sandbox's truth
by webhooks alone (transactions, which have no webhook, by the sweeper)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable

import pytest

from partnersync import keys, store
from tests.conftest import System, wait_for

pytestmark = pytest.mark.e2e

TERMINAL = {"ACTIVE", "APPROVED", "CREATED", "COMPLETED", "PROCESSED", "SETTLED", "BOOKED",
            "INVALID", "REJECTED"}  # fmt: skip


def xid() -> str:
    return f"it-{uuid.uuid4()}"


def np_body(**extra: object) -> dict[str, object]:
    return {"gender": "FEMALE", "firstName": "Ada", "lastName": "Lovelace", "birthDay": "1990-12-10",
            "birthPlace": "London", "birthCountry": "GB", "isUsNationality": False, "externalId": xid(), **extra}  # fmt: skip


def le_body(**extra: object) -> dict[str, object]:
    return {"legalName": "Acme GmbH", "legalForm": "LIMITED_LIABILITY_COMPANY", "registerCountry": "DE",
            "registerNumber": "HRB 1", "registerCourt": "Berlin", "foundedOn": "2001-01-01",
            "taxNumber": "123", "externalId": xid(), **extra}  # fmt: skip


def created_id(response, field: str) -> str:
    assert response.status_code == 200, response.text
    return response.json()[field]


def make(system: System, kind: str) -> str:
    """Create one entity of `kind` at the sandbox; its id."""
    fx = system.fixtures()
    np, customer = fx["naturalPersonId"], fx["customerId"]
    tv = system.tv
    if kind == "natural-person":
        return created_id(tv("POST", "/entities/natural-persons", np_body()), "naturalPersonId")
    if kind == "legal-entity":
        return created_id(tv("POST", "/entities/legal-entities", le_body()), "legalEntityId")
    if kind == "legal-representative":
        le = created_id(tv("POST", "/entities/legal-entities", le_body()), "legalEntityId")
        body = np_body(
            function="MANAGING_DIRECTOR", soleSignatureAuthorized=True, fatcaControllingPerson=False
        )
        return created_id(
            tv("POST", f"/entities/{le}/legal-representatives", body, requestor=np),
            "legalRepresentativeId",
        )
    if kind == "identification-verification":
        body = {
            "naturalPersonId": np,
            "externalVerifier": "WEB_ID",
            "identificationType": "VIDEO_IDENT",
        }
        return created_id(
            tv("POST", "/entities/identification-verifications", body, requestor=np),
            "identificationVerificationId",
        )
    if kind == "customer":
        body = {"entityId": np, "entityType": "NATURAL_PERSON", "externalId": xid()}
        return created_id(tv("POST", "/roles/customers", body, requestor=np), "customerId")
    if kind == "customer-product":
        return created_id(
            tv(
                "POST",
                f"/customers/{customer}/products",
                {"productCode": "BALANCE_ACCOUNT"},
                requestor=np,
            ),
            "customerProductId",
        )
    if kind == "document":
        body = {"resourceType": "NATURAL_PERSON", "resourceId": np, "type": "PROOF_OF_RESIDENCE", "name": "bill.pdf",
                "content": base64.b64encode(b"%PDF-1.4 test").decode(), "externalId": xid()}  # fmt: skip
        return created_id(tv("POST", "/v2/documents", body), "documentId")
    if kind == "onboarding":
        new_customer = make(system, "customer")
        wait_for(
            lambda: system.truth()[f"tradevest:customer:{new_customer}"]["status"] == "CREATED",
            what="customer",
        )
        return created_id(
            tv(
                "POST",
                "/onboardings",
                {"entityType": "CUSTOMER", "entityId": new_customer},
                requestor=np,
            ),
            "onboardingId",
        )
    if kind == "offboarding":
        body = {
            "entityType": "CUSTOMER",
            "entityId": customer,
            "reason": "CUSTOMER_REQUEST_IMMEDIATE",
        }
        return created_id(tv("POST", "/entities/offboardings", body, requestor=np), "offboardingId")
    if kind == "transfer":
        body = {
            "customerProductId": fx["balanceAccountId"],
            "amount": 1.5,
            "reference": "kinds",
            "externalId": xid(),
        }
        return created_id(tv("POST", "/transfers", body), "transferId")
    if kind == "traditional-order":
        body = {"depositoryCustomerProductId": fx["depositoryAccountId"], "cashCustomerProductId": fx["balanceAccountId"],
                "tradeSide": "BUY", "exchangeCode": "XFRA", "isin": "DE0007164600", "quantity": 12, "externalId": xid()}  # fmt: skip
        return created_id(tv("POST", "/trading/order/market", body, requestor=np), "orderId")
    if kind == "digital-order":
        body = {"cryptoSymbol": "BTC", "tradeSide": "BUY", "quantityType": "UNIT", "quantity": 0.1,
                "walletCustomerProductId": fx["walletId"], "cashCustomerProductId": fx["balanceAccountId"], "externalId": xid()}  # fmt: skip
        return created_id(tv("POST", "/digital/orders/market", body, requestor=np), "orderId")
    if kind == "strategy":
        return created_id(
            tv(
                "POST",
                "/strategies",
                {"name": "Balanced", "code": "BAL", "externalId": xid()},
                requestor=np,
            ),
            "strategyId",
        )
    raise AssertionError(kind)


def converged(
    system: System, key: str, expect: Callable[[str], bool] = TERMINAL.__contains__
) -> None:
    """The store holds the sandbox's final status for `key`."""

    def check() -> bool:
        truth = system.truth().get(key)
        record = store.load(system.r, [key])[0]
        return (
            truth is not None
            and expect(str(truth["status"]))
            and record is not None
            and record.status == truth["status"]
        )

    wait_for(check, timeout=30, what=f"{key} to converge")


KINDS = ["natural-person", "legal-entity", "legal-representative", "identification-verification",
         "customer", "customer-product", "document", "onboarding", "offboarding", "transfer",
         "traditional-order", "digital-order", "strategy"]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_kind_reconciles_to_the_sandbox_truth(system: System, kind: str) -> None:
    entity_id = make(system, kind)
    key = keys.entity_key("tradevest", kind, entity_id)
    converged(system, key)
    record = store.load(system.r, [key])[0]
    assert record.knownStatus
    history = [t.to for t in store.history(system.r, key)]
    assert history and history[-1] == record.status
    listing = system.cli("entities", "list", "--kind", kind, "--json")
    assert entity_id in {json.loads(line)["id"] for line in listing.stdout.splitlines()}
    if kind == "natural-person":  # personal data: masked unless asked for with --raw
        shown = system.cli("entities", "show", key)
        assert "Lovelace" not in shown.stdout and "***" in shown.stdout
        assert "Lovelace" in system.cli("entities", "show", key, "--raw").stdout


def test_transactions_are_found_by_the_sweeper(system: System) -> None:
    transfer = make(system, "transfer")
    converged(system, f"tradevest:transfer:{transfer}")

    def booked():
        for key, entity in system.truth().items():
            if entity["kind"] == "transaction":
                record = store.load(system.r, [key])[0]
                if record is not None and record.status == entity["status"]:
                    data = json.loads(bytes(record.data))
                    if data.get("cashTransaction", {}).get("transferId") == transfer:
                        return record
        return None

    record = wait_for(booked, timeout=30, what="transaction of the transfer")
    assert record.status == "BOOKED"


def test_onboarding_approval_activates_the_customer(system: System) -> None:
    onboarding = make(system, "onboarding")
    converged(system, f"tradevest:onboarding:{onboarding}")
    customer = system.truth()[f"tradevest:onboarding:{onboarding}"]
    data = json.loads(bytes(store.load(system.r, [f"tradevest:onboarding:{onboarding}"])[0].data))
    converged(system, f"tradevest:customer:{data['entityId']}", lambda s: s == "ACTIVE")
    assert customer["status"] == "APPROVED"


def test_platform_created_document_is_fetched(system: System) -> None:
    iv = make(system, "identification-verification")
    converged(system, f"tradevest:identification-verification:{iv}", lambda s: s == "APPROVED")
    data = json.loads(
        bytes(store.load(system.r, [f"tradevest:identification-verification:{iv}"])[0].data)
    )
    document_key = f"tradevest:document:{data['documentId']}"
    converged(system, document_key, lambda s: s == "APPROVED")
    document = json.loads(bytes(store.load(system.r, [document_key])[0].data))
    assert document["type"] == "IDENTIFICATION_CERTIFICATE"


def test_labels_update_fans_out_to_every_customer(system: System) -> None:
    first, second = make(system, "customer"), make(system, "customer")
    for c in (first, second):
        converged(system, f"tradevest:customer:{c}")
    response = system.tv(
        "POST", "/roles/customers/labels", {"customerIds": [first, second], "labels": ["vip"]}
    )
    assert response.status_code == 202

    def labelled() -> bool:
        records = store.load(
            system.r, [f"tradevest:customer:{first}", f"tradevest:customer:{second}"]
        )
        return all(
            r is not None and json.loads(bytes(r.data)).get("labels") == ["vip"] for r in records
        )

    wait_for(labelled, what="both customers re-fetched with their labels")


def test_update_rejection_keeps_state_and_records_reason(system: System) -> None:
    order = make(system, "traditional-order")
    key = f"tradevest:traditional-order:{order}"
    converged(system, key, lambda s: s == "SETTLED")
    np = system.http.get(system.sandbox + "/_sandbox/fixtures").json()["tradevest"][
        "naturalPersonId"
    ]
    patch = system.tv("PATCH", f"/trading/order/{order}", {"limitPrice": 10}, requestor=np)
    assert patch.status_code == 202
    record = wait_for(
        lambda: (r := store.load(system.r, [key])[0]).rejections and r, what="rejection"
    )
    assert record.status == "SETTLED"
    assert record.rejections[0].refusal.code == "ORDER_NOT_MODIFIABLE"


def test_unknown_status_is_stored_and_flagged(system: System) -> None:
    entity_id = make(system, "natural-person")
    key = f"tradevest:natural-person:{entity_id}"
    converged(system, key)
    forced = system.http.post(
        system.sandbox + "/_sandbox/tradevest/status",
        json={"kind": "natural-person", "id": entity_id, "status": "UNDER_INVESTIGATION"},
    )
    assert forced.status_code == 200
    record = wait_for(
        lambda: (r := store.load(system.r, [key])[0]).status == "UNDER_INVESTIGATION" and r,
        what="unknown status",
    )
    assert not record.knownStatus
    listing = system.cli("entities", "list", "--kind", "natural-person")
    assert "unknown status" in listing.stdout


def test_dropped_webhooks_are_repaired_by_the_sweeper(system: System) -> None:
    faults = system.http.post(system.sandbox + "/_sandbox/faults", json={"drop_webhook": 0.3})
    assert faults.status_code == 200
    try:
        created = [("transfer", make(system, "transfer")) for _ in range(10)]
        created += [("natural-person", make(system, "natural-person")) for _ in range(10)]
        for kind, entity_id in created:
            converged(system, f"tradevest:{kind}:{entity_id}")
        dropped = system.http.get(system.sandbox + "/_sandbox/faults").json()["injected"][
            "drop_webhook"
        ]
        assert dropped > 0  # the repair was needed
    finally:
        system.http.post(system.sandbox + "/_sandbox/faults", json={})


def test_second_labels_change_is_applied(system: System) -> None:
    """Exactly-once #1: a labels notification has no status and no modifiedOn, so two
    changes of one customer's labels look alike; the second must not be a 'duplicate'."""
    customer = make(system, "customer")
    key = f"tradevest:customer:{customer}"
    converged(system, key)

    def labels_are(expected: list[str]) -> bool:
        record = store.load(system.r, [key])[0]
        return record is not None and json.loads(bytes(record.data)).get("labels") == expected

    for labels in (["GOLD"], ["GOLD", "VIP"]):
        response = system.tv(
            "POST", "/roles/customers/labels", {"customerIds": [customer], "labels": labels}
        )
        assert response.status_code == 202
        wait_for(lambda labels=labels: labels_are(labels), what=f"labels {labels} mirrored")


def test_a_traditional_order_takes_the_documented_optional_fields(system: System) -> None:
    """exAnteId, expiryDate and asset_experience_fit (tradevest-api.md §4.9, [I]) are taken
    and sent as given, and the partner's order (the mirror) carries them (#37 item 4)."""
    fx = system.fixtures()
    ex_ante = str(uuid.uuid4())
    body = {"orderType": "limit", "depositoryCustomerProductId": fx["depositoryAccountId"],
            "cashCustomerProductId": fx["balanceAccountId"], "tradeSide": "BUY",
            "exchangeCode": "XFRA", "isin": "DE0007164600", "quantity": 2, "limitPrice": "10.5",
            "exAnteId": ex_ante, "expiryDate": "2027-01-29", "asset_experience_fit": True}  # fmt: skip
    done = system.cli("command", "submit", "traditional-order", "--key", f"k-{uuid.uuid4()}",
                      "--acting-for", fx["naturalPersonId"], "--data", json.dumps(body),
                      "--wait", "30", "--json")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    order_id = json.loads(done.stdout)["entityId"]
    key = f"tradevest:traditional-order:{order_id}"
    converged(system, key, lambda s: s == "SETTLED")
    data = json.loads(bytes(store.load(system.r, [key])[0].data))
    assert (data["exAnteId"], data["expiryDate"], data["asset_experience_fit"]) == (
        ex_ante, "2027-01-29", True,
    )  # fmt: skip
