"""Transfers, traditional and digital orders, strategies: creates, lifecycles and the bookings they make."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.tradevest.contract import (
    ISIN,
    Checker,
    error,
    now_iso,
)
from sandbox.tradevest.platform import Platform

MARKET_PRICE = Decimal("1.00")  # the fake exchange's one price, for every instrument


def _rests(order: dict[str, Any]) -> bool:
    """A limit order priced away from the market stays PLACED until canceled (a BUY
    below it, a SELL above it) [the sandbox's own market]."""
    if order.get("orderType") != "LIMIT" or order.get("limitPrice") is None:
        return False
    limit = Decimal(str(order["limitPrice"]))
    return limit < MARKET_PRICE if order.get("tradeSide") == "BUY" else limit > MARKET_PRICE


class Trading(Platform):
    async def create_transfer(self, request: Request, check: Checker) -> Response:
        check.uuid("customerProductId")
        amount = check.amount("amount")
        check.text("reference", 1, 140)
        if not isinstance(check.body.get("externalId"), str) or not check.body.get("externalId"):
            check.bad("externalId", "REQUIRED", "required, non-empty")
        check.done()
        product = self.store["customer-product"].get(check.body["customerProductId"])
        extra = {
            "amount": float(amount) if amount is not None else None,
            "currency": check.body.get("currency", "EUR"),
            "customerId": product.get("customerId") if product else None,
        }
        return self._create("transfer", check, self._progress_transfer, extra)

    async def incoming_test_transfer(self, request: Request, check: Checker) -> Response:
        """POST /transfers-test/incoming-transfer `{customerProductId, amount, reference}`:
        202, the money arrives (tradevest-api.md §4.8, test environment only). Booked as an
        incoming TRANSFER transaction for the product's customer [inferred: its shape]."""
        check.uuid("customerProductId")
        amount = check.amount("amount")
        check.text("reference", 1, 140)
        check.done()
        product_id = check.body["customerProductId"]
        product = self.store["customer-product"].get(product_id)
        if product is None or amount is None:
            return error(404, "Customer product not found", "NOT_FOUND")
        self.balances[product_id] = self.balances.get(product_id, Decimal(0)) + amount
        self._book(product.get("customerId"), "TRANSFER", cashTransaction={
            "customerProductId": product_id, "amount": float(amount),
            "referenceMessage": check.body["reference"], "counterpartyName": "Test sender",
        })  # fmt: skip
        return Response(status_code=202)

    async def ex_ante(self, request: Request, check: Checker) -> Response:
        """POST /trading/ex-ante: an ExAnteCostResult{exAnteId, createdOn, asset, order,
        costs[], total, timeline, metaInfo} (tradevest-api.md §4.9; the costs' shapes and
        values are the sandbox's own: inferred)."""
        check.uuid("depositoryCustomerProductId")
        check.uuid("cashCustomerProductId")
        check.choice("tradeSide", ("BUY", "SELL"))
        check.choice("quantityType", ("UNIT",))
        check.choice("exchangeCode", ("TGAT", "XFRA"))
        check.choice("orderType", ("MARKET", "LIMIT", "STOP"))
        if not isinstance(check.body.get("isin"), str) or not ISIN.match(check.body["isin"]):
            check.bad("isin", "PATTERN", "^[A-Z]{2}[A-Z0-9]{10}$")
        quantity = check.amount("quantity", "1")
        price = check.amount("price", "0.001") if "price" in check.body else None
        if check.body.get("orderType") in ("LIMIT", "STOP") and "price" not in check.body:
            check.bad("price", "REQUIRED", "required for stop and limit orders")
        check.done()
        value = (quantity or Decimal(0)) * (price or MARKET_PRICE)
        fee = Decimal("1.00")
        return JSONResponse({
            "exAnteId": str(uuid.uuid4()), "createdOn": now_iso(),
            "asset": {"isin": check.body["isin"]}, "order": check.body,
            "costs": [{"type": "ORDER_FEE", "amount": float(fee), "currency": "EUR"}],
            "total": {"amount": float(value + fee), "currency": "EUR"},
            "timeline": [], "metaInfo": {},
        })  # fmt: skip

    async def _progress_transfer(self, transfer: dict[str, Any]) -> None:
        await self.step()
        product = transfer["customerProductId"]
        if product not in self.balances:
            return self.invalid(
                "transfer",
                transfer,
                "CUSTOMER_PRODUCT_NOT_FOUND_ERROR",
                "customerProductId not found",
            )
        self.set_status("transfer", transfer, "PENDING", "CREATED")
        await self.step()
        amount = Decimal(str(transfer["amount"]))
        if amount > self.balances[product]:
            return self.set_status(
                "transfer", transfer, "REJECTED", rejectReason="INSUFFICIENT_BALANCE"
            )
        self.balances[product] -= amount
        self.set_status("transfer", transfer, "PROCESSED")
        self._book(transfer.get("customerId"), "TRANSFER", cashTransaction={
            "transferId": transfer["transferId"], "customerProductId": product,
            "amount": -float(amount), "referenceMessage": transfer.get("reference"),
        })  # fmt: skip

    async def create_traditional_order(self, request: Request, check: Checker) -> Response:
        order_type = request.path_params["orderType"].upper()
        if order_type not in ("MARKET", "LIMIT", "STOP"):
            return error(404, "Not found", "NOT_FOUND")
        check.uuid("depositoryCustomerProductId")
        check.uuid("cashCustomerProductId")
        check.choice("tradeSide", ("BUY", "SELL"))
        check.choice("exchangeCode", ("TGAT", "XFRA"))
        if not isinstance(check.body.get("isin"), str) or not ISIN.match(check.body["isin"]):
            check.bad("isin", "PATTERN", "^[A-Z]{2}[A-Z0-9]{10}$")
        check.amount("quantity", "1")
        if not check.body.get("externalId"):
            check.bad("externalId", "REQUIRED", "required")
        check.done()
        return self._create("traditional-order", check, self._progress_traditional_order,
                            {"orderType": order_type, "quantityType": "UNIT",
                             "exAnteId": check.body.get("exAnteId") or str(uuid.uuid4())})  # fmt: skip

    async def _progress_traditional_order(self, order: dict[str, Any]) -> None:
        kind = "traditional-order"

        async def step() -> bool:
            """False once the order was canceled meanwhile: nothing more happens to it."""
            await self.step()
            return order["status"] != "CANCELED"

        if not await step():
            return
        if self._unknown_products(order, "depositoryCustomerProductId", "cashCustomerProductId"):
            return self.invalid(
                kind, order, "CUSTOMER_PRODUCT_NOT_FOUND_ERROR", "unknown customer product"
            )
        self.set_status(kind, order, "PENDING", "CREATED")
        if not await step():
            return
        self.set_status(kind, order, "PLACED")
        if _rests(order) or not await step():
            return
        if order["isin"].startswith("XX"):
            return self.set_status(
                kind, order, "REJECTED", message="rejected by the exchange: unknown instrument"
            )
        if Decimal(str(order["quantity"])) > 10:
            self.set_status(kind, order, "PARTIALLY_FILLED")
            if not await step():
                return
        self.set_status(kind, order, "FILLED")
        customer = self.store["customer-product"][order["cashCustomerProductId"]].get("customerId")
        self._book(
            customer,
            "TRADE",
            traditionalTradingTransaction={"orderId": order["orderId"], "isin": order["isin"]},
        )
        await self.step()
        self.set_status(kind, order, "SETTLED")

    async def change_traditional_order(self, request: Request, check: Checker) -> Response:
        if request.method == "DELETE":
            return await self.cancel_traditional_order(request, check)
        return await self.update_traditional_order(request, check)

    async def cancel_traditional_order(self, request: Request, check: Checker) -> Response:
        """DELETE /trading/order/{orderId}: 202, or 400 once it can no longer be canceled
        (tradevest-api.md §4.9; "market orders have a low probability of being canceled":
        here a market order is filled before a cancel can arrive)."""
        order = self.store["traditional-order"].get(request.path_params["id"])
        if order is None:
            return error(404, "Not found", "NOT_FOUND")
        # RECEIVED too: not yet validated, nothing at the exchange [inferred]
        if order["status"] not in ("RECEIVED", "PENDING", "PLACED", "PARTIALLY_FILLED"):
            return error(400, f"order is {order['status']}", "ORDER_NOT_CANCELABLE")
        self.set_status("traditional-order", order, "CANCELED")
        return Response(status_code=202)

    async def update_traditional_order(self, request: Request, check: Checker) -> Response:
        order = self.store["traditional-order"].get(request.path_params["id"])
        if order is None:
            return error(404, "Not found", "NOT_FOUND")
        if order["status"] in ("FILLED", "SETTLED", "CANCELED", "REJECTED", "INVALID", "EXPIRED"):
            self.reject_update(
                "traditional-order", order, "ORDER_NOT_MODIFIABLE", f"order is {order['status']}"
            )
        else:
            order.update(
                {
                    k: v
                    for k, v in check.body.items()
                    if k in ("limitPrice", "stopPrice", "quantity", "expiryDate")
                }
            )
            self.set_status("traditional-order", order, order["status"])
        return Response(status_code=202)

    # digital orders: INVALID for unknown products; REJECTED when cryptoSymbol is REJECT

    async def create_digital_order(self, request: Request, check: Checker) -> Response:
        check.text("cryptoSymbol", 1, 16)
        check.choice("tradeSide", ("BUY", "SELL"))
        check.choice("quantityType", ("UNIT", "AMOUNT"))
        check.amount("quantity", "0.00000001")
        check.uuid("walletCustomerProductId")
        check.uuid("cashCustomerProductId")
        if not check.body.get("externalId"):
            check.bad("externalId", "REQUIRED", "required")
        check.done()
        body = check.body
        # stored (and served by GET) in the documented DigitalAssetsOrder shape
        check.body = {
            "externalId": body["externalId"], "orderType": "MARKET", "side": body["tradeSide"],
            "walletCustomerProductId": body["walletCustomerProductId"],
            "cashCustomerProductId": body["cashCustomerProductId"],
            "marketOrderData": {"symbol": body["cryptoSymbol"], "assetType": "CRYPTOCURRENCY",
                                "quantityType": body["quantityType"], "quantity": body["quantity"]},
        }  # fmt: skip
        return self._create("digital-order", check, self._progress_digital_order)

    async def _progress_digital_order(self, order: dict[str, Any]) -> None:
        kind = "digital-order"
        await self.step()
        if self._unknown_products(order, "walletCustomerProductId", "cashCustomerProductId"):
            return self.invalid(
                kind, order, "CUSTOMER_PRODUCT_NOT_FOUND_ERROR", "unknown customer product"
            )
        self.set_status(kind, order, "PENDING", "CREATED")
        await self.step()
        if order["marketOrderData"]["symbol"] == "REJECT":
            return self.set_status(kind, order, "REJECTED", message="rejected by the exchange")
        self.set_status(
            kind,
            order,
            "FILLED",
            executionData={"quantity": order["marketOrderData"]["quantity"], "executionPrice": 100},
        )
        await self.step()
        self.set_status(kind, order, "SETTLED")

    # strategies [inferred lifecycle]: PENDING → ACTIVE

    async def create_strategy(self, request: Request, check: Checker) -> Response:
        check.text("name")
        check.text("code", 1, 5)
        check.done()
        external_id = self._claim_external_id(check)
        if external_id is not None and external_id in self.external_ids:
            return error(409, "externalId already used", "DUPLICATE_EXTERNAL_ID")
        strategy = self._new("strategy", {**check.body, "subscribersCount": 0}, status="PENDING")
        self.spawn(self._run(self._progress_strategy, strategy))
        return JSONResponse({"strategyId": strategy["strategyId"]})

    async def _progress_strategy(self, strategy: dict[str, Any]) -> None:
        self.set_status("strategy", strategy, "PENDING", "CREATED")
        await self.step()
        self.set_status("strategy", strategy, "ACTIVE")
