"""Commands on what Tradevest already has (#37 item 5): modify and cancel an order, close a
customer product, sign a document — journaled like the creates, one at a time per target,
looked up by their effect after a lost answer, and a cancel that loses the race to the
exchange ends in a clear outcome (tradevest-api.md §4.5, §4.6, §4.9)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from partnersync import commands, store
from tests.conftest import System, wait_for

pytestmark = pytest.mark.e2e


def submit(system: System, kind: str, data: dict[str, Any], *acting: str, wait: bool = True):
    args = ["command", "submit", kind, "--data", json.dumps(data), "--json"]
    if acting:
        args += ["--acting-for", acting[0]]
    if wait:
        args += ["--wait", "30"]
    done = system.cli(*args)
    return done, (json.loads(done.stdout) if done.stdout.strip() else {})


def order(system: System, order_type: str, **extra: Any) -> str:
    fx = system.fixtures()
    body = {"orderType": order_type, "depositoryCustomerProductId": fx["depositoryAccountId"],
            "cashCustomerProductId": fx["balanceAccountId"], "tradeSide": "BUY",
            "exchangeCode": "XFRA", "isin": "DE0007164600", "quantity": 2, **extra}  # fmt: skip
    # a resting order never settles: no --wait (which would wait for a decided outcome)
    done, shown = submit(system, "traditional-order", body, fx["naturalPersonId"],
                         wait=order_type != "limit")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return str(accepted(system, shown).entityId)


def accepted(system: System, shown: dict[str, Any]) -> Any:
    """The journaled command once the partner answered (for entities whose outcome stays
    open, where --wait would wait for the whole deadline)."""
    return wait_for(
        lambda: (c := commands.load(system.r, shown["externalId"])).state.final and c,
        what=f"command {shown['externalId']} answered",
    )


def mirrored(system: System, key: str, what: str, check) -> Any:
    return wait_for(lambda: (r := store.load(system.r, [key])[0]) and check(r) and r, what=what)


def test_an_order_is_modified_then_canceled(system: System) -> None:
    np = system.fixtures()["naturalPersonId"]
    resting = order(system, "limit", limitPrice="0.50")  # below the fake's market: it rests
    key = f"tradevest:traditional-order:{resting}"
    mirrored(system, key, "PLACED", lambda r: r.status == "PLACED")

    done, shown = submit(system, "traditional-order-modify",
                         {"orderId": resting, "limitPrice": "0.60"}, np)  # fmt: skip
    assert done.returncode == 0 and shown["state"] == "ACCEPTED", done.stdout + done.stderr
    assert shown["entityId"] == resting and not shown["failed"]
    mirrored(system, key, "the new limit mirrored",
             lambda r: json.loads(bytes(r.data)).get("limitPrice") in ("0.60", 0.6))  # fmt: skip

    done, shown = submit(system, "traditional-order-cancel", {"orderId": resting}, np)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (shown["state"], shown["entityStatus"], shown["failed"]) == (
        "ACCEPTED",
        "CANCELED",
        False,
    )
    mirrored(system, key, "CANCELED", lambda r: r.status == "CANCELED")
    # the same cancel again is the same command: nothing more is sent
    again, shown_again = submit(system, "traditional-order-cancel", {"orderId": resting}, np)
    assert again.returncode == 0 and shown_again["created"] is False
    actions = system.http.get(system.sandbox + "/_sandbox/ledger").json()["actionRequests"]
    assert actions[f"DELETE /tradevest/trading/order/{resting}"] == 1
    assert actions[f"PATCH /tradevest/trading/order/{resting}"] == 1


def test_a_cancel_that_comes_too_late_is_a_clear_outcome(system: System) -> None:
    np = system.fixtures()["naturalPersonId"]
    filled = order(system, "market")  # a market order fills before a cancel can arrive
    key = f"tradevest:traditional-order:{filled}"
    mirrored(system, key, "SETTLED", lambda r: r.status == "SETTLED")
    done, shown = submit(system, "traditional-order-cancel", {"orderId": filled}, np)
    assert done.returncode == 1 and shown["state"] == "REJECTED", done.stdout + done.stderr
    assert "ORDER_NOT_CANCELABLE" in shown["reason"] and "SETTLED" in shown["reason"]
    assert "Traceback" not in done.stderr
    assert store.load(system.r, [key])[0].status == "SETTLED"  # untouched


def test_a_product_is_closed_and_a_document_signed(system: System) -> None:
    fx = system.fixtures()
    body = {"customerId": fx["customerId"], "productCode": "WALLET"}
    done, shown = submit(system, "customer-product", body, fx["naturalPersonId"])
    assert done.returncode == 0, done.stdout + done.stderr
    product = shown["entityId"]
    key = f"tradevest:customer-product:{product}"
    mirrored(system, key, "ACTIVE", lambda r: r.status == "ACTIVE")
    done, shown = submit(system, "customer-product-close", {"customerProductId": product})
    assert done.returncode == 0 and shown["entityStatus"] == "CLOSED", done.stdout + done.stderr
    mirrored(system, key, "CLOSED", lambda r: r.status == "CLOSED")

    sign = {"partnerDocumentId": str(uuid.uuid4()), "naturalPersonId": fx["naturalPersonId"]}
    done, shown = submit(system, "document-sign", sign)
    assert done.returncode == 0 and shown["state"] == "ACCEPTED", done.stdout + done.stderr
    nothing, _ = submit(system, "traditional-order-modify", {"orderId": str(uuid.uuid4())},
                        fx["naturalPersonId"], wait=False)  # fmt: skip
    assert nothing.returncode == 2 and "nothing to modify" in nothing.stderr


def test_an_ex_ante_quote_goes_on_an_order_and_a_test_transfer_arrives(system: System) -> None:
    fx = system.fixtures()
    np = fx["naturalPersonId"]
    ask = {"depositoryCustomerProductId": fx["depositoryAccountId"],
           "cashCustomerProductId": fx["balanceAccountId"], "tradeSide": "BUY",
           "quantityType": "UNIT", "exchangeCode": "XFRA", "orderType": "MARKET",
           "isin": "DE0007164600", "quantity": 2}  # fmt: skip
    quote = system.cli("tradevest", "ex-ante", "--acting-for", np, "--data", json.dumps(ask),
                       "--json")  # fmt: skip
    assert quote.returncode == 0, quote.stdout + quote.stderr
    ex_ante = json.loads(quote.stdout)["exAnteId"]
    placed = order(system, "market", exAnteId=ex_ante)
    key = f"tradevest:traditional-order:{placed}"
    mirrored(system, key, "the order with its exAnteId",
             lambda r: json.loads(bytes(r.data)).get("exAnteId") == ex_ante)  # fmt: skip
    unnamed = system.cli("tradevest", "ex-ante", "--data", json.dumps(ask))
    assert unnamed.returncode == 2 and "Requestor-ID" in unnamed.stderr
    priceless = system.cli("tradevest", "ex-ante", "--acting-for", np, "--data",
                           json.dumps(dict(ask, orderType="LIMIT")))  # fmt: skip
    assert priceless.returncode == 2 and "price is required" in priceless.stderr

    reference = f"test-{uuid.uuid4().hex[:8]}"
    sent = system.cli(
        "tradevest",
        "incoming-test-transfer",
        "--data",
        json.dumps(
            {"customerProductId": fx["balanceAccountId"], "amount": "25.00", "reference": reference}
        ),
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    booked, cursor = [], ""
    while True:  # every page: the customer has many transactions by now
        page = system.tv("GET", f"/customers/{fx['customerId']}/transactions"
                                f"?limit=100&transactionType=TRANSFER{cursor}").json()  # fmt: skip
        booked += [t for t in page["data"]
                   if (t.get("cashTransaction") or {}).get("referenceMessage") == reference]  # fmt: skip
        if not page["pagination"].get("cursor"):
            break
        cursor = f"&cursor={page['pagination']['cursor']}"
    assert len(booked) == 1 and booked[0]["cashTransaction"]["amount"] == 25.0
    nowhere = system.cli(
        "tradevest",
        "incoming-test-transfer",
        "--data",
        json.dumps({"customerProductId": str(uuid.uuid4()), "amount": "1.00", "reference": "x"}),
    )
    assert nowhere.returncode == 1 and "404" in nowhere.stderr and "Traceback" not in nowhere.stderr


def test_a_cancel_whose_answer_is_lost_is_found_by_its_effect(system: System) -> None:
    """The platform cancels, the answer never comes (the client times out): the next
    attempt sees CANCELED at the partner and sends nothing again."""
    np = system.fixtures()["naturalPersonId"]
    resting = order(system, "limit", limitPrice="0.40")
    key = f"tradevest:traditional-order:{resting}"
    mirrored(system, key, "PLACED", lambda r: r.status == "PLACED")
    system.http.post(system.sandbox + "/_sandbox/faults", json={
        "timeout_ms": 5000,  # longer than PARTNERSYNC_HTTP_TIMEOUT_S (3 s)
        "script": [{"fault": "timeout", "method": "DELETE", "path": f"/trading/order/{resting}"}],
    }).raise_for_status()  # fmt: skip
    done, shown = submit(system, "traditional-order-cancel", {"orderId": resting}, np)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (shown["state"], shown["entityStatus"]) == ("ACCEPTED", "CANCELED")
    actions = system.http.get(system.sandbox + "/_sandbox/ledger").json()["actionRequests"]
    assert actions[f"DELETE /tradevest/trading/order/{resting}"] == 1
    history = json.loads(system.cli("command", "show", shown["externalId"], "--json").stdout)
    assert [a["outcome"] for a in history["history"]][-1] == "took effect", history["history"]
