"""Saxo OpenAPI under /saxo/openapi (bearer token `sandbox`): partner cash transfers.

Cash transfers are accepted Pending and settle asynchronously to Successful, or to Failed
when the Comment contains "FAIL" (a test trigger). The platform does not dedupe on
ExternalReference (the docs: it "may, but is not required to, be unique"); the ledger
counts create requests per ExternalReference so tests can prove partnersync does.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.faults import Faults

TOKEN = "sandbox"
OWNER_CLIENT_KEY = "WLC-owner-key=="  # the white-label owner (SAXO_CLIENT_KEY)
FUNDING_ACCOUNT = "FUND-EUR-key=="  # the WLC's funding account (SAXO_FUNDING_ACCOUNT_KEY)
CLIENT_ACCOUNT = "CLIENT1-EUR-key=="
CLIENT_KEY = "CLIENT1-key=="
USD_ACCOUNT = "CLIENT1-USD-key=="


def saxo_error(
    status: int, code: str, message: str, model_state: dict[str, list[str]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"ErrorCode": code, "Message": message}
    if model_state:
        body["ModelState"] = model_state
    return JSONResponse(body, status_code=status, headers={"X-Correlation": uuid.uuid4().hex})


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Saxo:
    def __init__(self, faults: Faults, *, step_s: float = 0.2):
        self.faults = faults
        self.step_s = step_s
        self.accounts: dict[str, dict[str, Any]] = {
            FUNDING_ACCOUNT: {"Currency": "EUR", "Balance": Decimal("10000000"), "Funding": True, "ClientKey": OWNER_CLIENT_KEY},
            CLIENT_ACCOUNT: {"Currency": "EUR", "Balance": Decimal("1000"), "Funding": False, "ClientKey": CLIENT_KEY},
            USD_ACCOUNT: {"Currency": "USD", "Balance": Decimal("0"), "Funding": False, "ClientKey": CLIENT_KEY},
        }  # fmt: skip
        self.transfers: dict[str, dict[str, Any]] = {}
        self.create_requests: dict[str, int] = {}  # ExternalReference -> POSTs received
        self.next_id = 1268
        self.tasks: set[asyncio.Task[None]] = set()
        self.rate_limited = 0

    def routes(self) -> list[Route]:
        return [
            Route("/atr/v1/partner/cashtransfers", self.api(self.create_cash_transfer, self.list_cash_transfers), methods=["GET", "POST"]),
            Route("/atr/v1/partner/cashtransfers/{TransactionId}", self.api(None, self.get_cash_transfer), methods=["GET"]),
        ]  # fmt: skip

    def api(
        self,
        write: Callable[[Request, Any], Awaitable[Response]] | None,
        read: Callable[[Request], Awaitable[Response]] | None,
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                return Response(status_code=401)  # Saxo: 401 with an empty body
            await self.faults.delay()
            if self.faults.roll("rate_limit"):
                self.rate_limited += 1
                response = saxo_error(429, "TooManyRequests", "Request rate limit exceeded")
                response.headers.update(
                    {
                        "X-RateLimit-Session-Limit": "120",
                        "X-RateLimit-Session-Remaining": "0",
                        "X-RateLimit-Session-Reset": "1",
                    }  # fmt: skip
                )
                return response
            if self.faults.roll("http_5xx"):
                return saxo_error(503, "ServiceUnavailable", "Service unavailable")
            if request.method == "GET":
                assert read is not None
                return await read(request)
            try:
                body = json.loads(await request.body())
            except ValueError:
                return saxo_error(400, "InvalidRequest", "Body is not JSON")
            assert write is not None
            response = await write(request, body)
            if self.faults.roll("timeout"):
                await asyncio.sleep(self.faults.timeout_ms / 1000)  # acted; the answer is lost
            return response

        return endpoint

    async def create_cash_transfer(self, request: Request, body: Any) -> Response:
        if not isinstance(body, dict):
            return saxo_error(400, "InputDataInvalid", "Body must be an object")
        model: dict[str, list[str]] = {}
        allowed = {
            "FromAccountKey",
            "ToAccountKey",
            "Amount",
            "Currency",
            "FundingCheck",
            "ExternalReference",
            "Comment",
            "ValueDate",
        }
        for extra in set(body) - allowed:
            model[extra] = ["Unknown property (additionalProperties: false)"]
        for name in ("FromAccountKey", "ToAccountKey", "Currency"):
            if not isinstance(body.get(name), str) or not body.get(name):
                model[name] = ["Required"]
        try:
            amount = Decimal(str(body.get("Amount")))
            if not amount.is_finite() or amount <= 0:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            model["Amount"] = ["Must be a positive number"]
        reference = body.get("ExternalReference")
        if reference is not None and (not isinstance(reference, str) or len(reference) > 50):
            model["ExternalReference"] = ["At most 50 characters"]
        if body.get("FundingCheck", "Enforce") not in ("Enforce", "Ignore"):
            model["FundingCheck"] = ["Enforce or Ignore"]
        value_date = body.get("ValueDate")
        if value_date is not None:
            try:
                when = datetime.fromisoformat(str(value_date))
                if abs(when - datetime.now(UTC)) > timedelta(days=90):
                    model["ValueDate"] = ["Must be within [-90;90] days of the current date"]
            except ValueError:
                model["ValueDate"] = ["Not a date-time"]
        if model:
            return saxo_error(400, "InputDataInvalid", "Invalid input", model)
        if isinstance(reference, str):
            self.create_requests[reference] = self.create_requests.get(reference, 0) + 1
        source, target = (
            self.accounts.get(body["FromAccountKey"]),
            self.accounts.get(body["ToAccountKey"]),
        )
        if source is None or target is None:
            return saxo_error(404, "AccountsNotFoundForTransferDoneByWlp", "Accounts not found")
        if source["Funding"] == target["Funding"]:
            return saxo_error(
                400,
                "OneAccountShouldBeFundingAccount",
                "Exactly one account must be the funding account",
            )
        if not (source["Currency"] == target["Currency"] == body["Currency"]):
            return saxo_error(
                400, "CurrencyMustBeSameAsAtLeastOneOfTheAccounts", "Currency mismatch"
            )
        if body.get("FundingCheck") == "Ignore" and source["Funding"]:
            return saxo_error(
                400,
                "IgnoreFundingCheckNotApplicableWhileFunding",
                "FundingCheck Ignore is not allowed on a funding",
            )
        if body.get("FundingCheck", "Enforce") == "Enforce" and source["Balance"] < amount:
            return saxo_error(400, "InsufficientCash", "Insufficient cash on the source account")
        transaction_id = str(self.next_id + 1)
        self.next_id += 3
        transfer = {
            "TransactionId": transaction_id, "Amount": float(amount), "Currency": body["Currency"],
            "Comment": body.get("Comment"), "ExternalReference": reference,
            "FromAccount": body["FromAccountKey"], "ToAccount": body["ToAccountKey"],
            "FromAccountPositionId": str(int(transaction_id) - 2), "ToAccountPositionId": str(int(transaction_id) - 1),
            "FundingCheck": body.get("FundingCheck", "Enforce"), "TransferRequestedOn": now_iso(),
            "TransferStatus": "Pending", "ValueDate": value_date or now_iso(),
        }  # fmt: skip
        self.transfers[transaction_id] = transfer
        self.spawn(self._settle(transfer, amount))
        return JSONResponse(
            {
                k: transfer[k]
                for k in ("TransactionId", "FromAccountPositionId", "ToAccountPositionId")
            },
            status_code=201,
        )

    async def _settle(self, transfer: dict[str, Any], amount: Decimal) -> None:
        await asyncio.sleep(self.step_s)
        if "FAIL" in (transfer.get("Comment") or ""):
            transfer["TransferStatus"] = "Failed"
            return
        self.accounts[transfer["FromAccount"]]["Balance"] -= amount
        self.accounts[transfer["ToAccount"]]["Balance"] += amount
        transfer["TransferStatus"] = "Successful"

    async def get_cash_transfer(self, request: Request) -> Response:
        transfer = self.transfers.get(request.path_params["TransactionId"])
        if transfer is None:
            return saxo_error(404, "TransactionNotFound", "Transaction not found")
        return JSONResponse({k: v for k, v in transfer.items() if v is not None})

    async def list_cash_transfers(self, request: Request) -> Response:
        q = request.query_params
        items = list(self.transfers.values())
        if "ExternalReference" in q:
            items = [t for t in items if t.get("ExternalReference") == q["ExternalReference"]]
        if "AccountKey" in q:
            items = [t for t in items if q["AccountKey"] in (t["FromAccount"], t["ToAccount"])]
        if "ClientKey" in q:
            keys = {k for k, a in self.accounts.items() if a["ClientKey"] == q["ClientKey"]}
            items = [t for t in items if t["FromAccount"] in keys or t["ToAccount"] in keys]
        if "FromDateTime" in q:
            items = [t for t in items if t["TransferRequestedOn"] >= q["FromDateTime"]]
        if "ToDateTime" in q:
            items = [t for t in items if t["TransferRequestedOn"] <= q["ToDateTime"]]
        try:
            top = max(1, min(int(q.get("Top", "50")), 1000))
            skip = int(q.get("SkipToken") or 0)
        except ValueError:
            return saxo_error(400, "InvalidRequest", "Top/SkipToken must be integers")
        page = items[skip : skip + top]
        body: dict[str, Any] = {
            "Data": [{k: v for k, v in t.items() if v is not None} for t in page],
            "__count": len(items),
        }
        if skip + top < len(items):
            params = dict(q, SkipToken=str(skip + top), Top=str(top))
            body["__next"] = "/openapi/atr/v1/partner/cashtransfers?" + "&".join(
                f"{k}={v}" for k, v in params.items()
            )
        return JSONResponse(body)

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def ledger(self) -> list[dict[str, Any]]:
        return [
            {"partner": "saxo", "kind": "cash-transfer", "id": t["TransactionId"],
             "externalId": t.get("ExternalReference"), "status": t["TransferStatus"],
             "modifiedOn": None}
            for t in self.transfers.values()
        ]  # fmt: skip
