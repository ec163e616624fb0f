"""Tradevest under /tradevest: OAuth2 token, webhooks registration, transfers.

Creates are accepted synchronously (RECEIVED) and processed asynchronously:
RECEIVED → INVALID (unknown customerProductId) | PENDING → PROCESSED | REJECTED
(amount above the account's balance), each change notified by webhook.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.faults import Faults
from sandbox.webhooks import Deliverer

CLIENT_ID = "sandbox"
CLIENT_SECRET = "sandbox"
TOKEN_TTL_S = 3600

# Fixtures: one customer with one balance account (see GET /_sandbox/fixtures).
CUSTOMER_ID = "5b0f0a52-6a43-4c42-9a8e-0c7f1f3e9a01"
BALANCE_ACCOUNT_ID = "8f14e45f-ceea-4e7a-8a3b-1d6b7f0c2d11"
INITIAL_BALANCE = Decimal("1000000.00")

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error(
    status: int, message: str, code: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        "message": message,
        "responseType": "ERROR",
        "requestId": str(uuid.uuid4()),
        "errorCode": code,
    }
    if details:
        body["errorDetails"] = details
    return JSONResponse(body, status_code=status)


class Tradevest:
    def __init__(self, faults: Faults, deliverer: Deliverer, *, step_s: float = 0.2):
        self.faults = faults
        self.deliverer = deliverer
        self.step_s = step_s
        self.tokens: set[str] = set()
        self.transfers: dict[str, dict[str, Any]] = {}
        self.create_requests: dict[str, int] = {}  # externalId -> POSTs received
        self.external_ids: dict[str, str] = {}  # externalId -> entity id (kept after purge)
        self.balances: dict[str, Decimal] = {BALANCE_ACCOUNT_ID: INITIAL_BALANCE}
        self.tasks: set[asyncio.Task[None]] = set()

    # -- plumbing ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("/oauth2/token", self.token, methods=["POST"]),
            Route("/connect/token", self.token, methods=["POST"]),
            Route("/webhooks", self.webhooks, methods=["GET", "POST"]),
            Route("/webhooks/{eventType}", self.webhook, methods=["GET", "DELETE"]),
            Route("/transfers", self.create_transfer, methods=["POST"]),
            Route("/transfers/{transferId}", self.get_transfer, methods=["GET"]),
        ]

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.tokens

    async def faulted(self, request: Request) -> Response | None:
        """A fault that replaces the answer before the platform acts, if one is rolled."""
        await self.faults.delay()
        if self.faults.roll("rate_limit"):
            response = error(429, "Too many requests", "RATE_LIMIT")
            response.headers["Retry-After"] = "1"
            return response
        if self.faults.roll("http_5xx"):
            return error(503, "Service unavailable", "SERVICE_UNAVAILABLE")
        return None

    async def lose_response(self) -> None:
        """The 'timeout' fault: the platform acted; the caller never hears back."""
        await asyncio.sleep(self.faults.timeout_ms / 1000)

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- auth and webhooks registration ---------------------------------------------------

    async def token(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("latin-1")).items()}
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL_S}
        )

    async def webhooks(self, request: Request) -> Response:
        if not self.authorized(request):
            return error(401, "Unauthorized", "UNAUTHORIZED")
        if request.method == "GET":
            return JSONResponse(list(self.deliverer.registrations.values()))
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error(400, "Body is not JSON", "BAD_REQUEST")
        problems = []
        if not isinstance(body, dict):
            return error(400, "Body must be an object", "BAD_REQUEST")
        if not isinstance(body.get("eventType"), str):
            problems.append(
                {"field": "eventType", "errors": [{"code": "REQUIRED", "message": "required"}]}
            )
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(
            ("https://", "http://127.", "http://localhost")
        ):
            problems.append(
                {
                    "field": "url",
                    "errors": [{"code": "PATTERN", "message": "The URL must be HTTPS."}],
                }
            )
        headers = body.get("headers", [])
        if not isinstance(headers, list) or len(headers) > 5:
            problems.append(
                {"field": "headers", "errors": [{"code": "MAX_ITEMS", "message": "at most 5"}]}
            )
        if problems:
            return error(400, "Validation failed", "VALIDATION_ERROR", problems)
        stamp = now_iso()
        previous = self.deliverer.registrations.get(body["eventType"])
        self.deliverer.registrations[body["eventType"]] = {
            "createdOn": previous["createdOn"] if previous else stamp,
            "modifiedOn": stamp,
            "eventType": body["eventType"],
            "url": url,
            "headers": headers,
        }
        return Response(status_code=200)

    async def webhook(self, request: Request) -> Response:
        if not self.authorized(request):
            return error(401, "Unauthorized", "UNAUTHORIZED")
        event_type = request.path_params["eventType"]
        registration = self.deliverer.registrations.get(event_type)
        if registration is None:
            return error(404, "Webhook not found", "NOT_FOUND")
        if request.method == "DELETE":
            del self.deliverer.registrations[event_type]
            return Response(status_code=200)
        return JSONResponse(registration)

    # -- transfers --------------------------------------------------------------------

    async def create_transfer(self, request: Request) -> Response:
        if not self.authorized(request):
            return error(401, "Unauthorized", "UNAUTHORIZED")
        faulted = await self.faulted(request)
        if faulted is not None:
            return faulted
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error(400, "Body is not JSON", "BAD_REQUEST")
        if not isinstance(body, dict):
            return error(400, "Body must be an object", "BAD_REQUEST")
        problems = []

        def bad(field: str, code: str, message: str) -> None:
            problems.append({"field": field, "errors": [{"code": code, "message": message}]})

        product = body.get("customerProductId")
        if not isinstance(product, str) or not _UUID.match(product):
            bad("customerProductId", "FORMAT", "must be a uuid")
        amount: Decimal | None = None
        try:
            amount = Decimal(str(body.get("amount")))
            if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            bad("amount", "FORMAT", "must be > 0 with at most 2 decimals")
        reference = body.get("reference")
        if not isinstance(reference, str) or not 1 <= len(reference) <= 140:
            bad("reference", "LENGTH", "1 to 140 characters")
        external_id = body.get("externalId")
        if not isinstance(external_id, str) or not external_id:
            bad("externalId", "REQUIRED", "required, non-empty")
        if problems:
            return error(400, "Validation failed", "VALIDATION_ERROR", problems)
        self.create_requests[external_id] = self.create_requests.get(external_id, 0) + 1
        if external_id in self.external_ids:
            return error(409, "externalId already used", "DUPLICATE_EXTERNAL_ID")
        transfer_id = str(uuid.uuid4())
        stamp = now_iso()
        self.external_ids[external_id] = transfer_id
        self.transfers[transfer_id] = {
            "transferId": transfer_id,
            "transferStatus": "RECEIVED",
            "createdOn": stamp,
            "modifiedOn": stamp,
            "customerId": CUSTOMER_ID if product in self.balances else None,
            "customerProductId": product,
            "amount": float(amount),
            "currency": body.get("currency", "EUR"),
            "reference": reference,
            "externalId": external_id,
        }
        self.spawn(self._process_transfer(transfer_id, amount))
        if self.faults.roll("timeout"):
            await self.lose_response()
        return JSONResponse({"transferId": transfer_id})

    async def get_transfer(self, request: Request) -> Response:
        if not self.authorized(request):
            return error(401, "Unauthorized", "UNAUTHORIZED")
        faulted = await self.faulted(request)
        if faulted is not None:
            return faulted
        transfer = self.transfers.get(request.path_params["transferId"])
        if transfer is None:
            return error(404, "Transfer not found", "NOT_FOUND")
        return JSONResponse({"transfer": {k: v for k, v in transfer.items() if v is not None}})

    def _set_status(self, transfer: dict[str, Any], status: str, **extra: Any) -> None:
        transfer["transferStatus"] = status
        transfer["modifiedOn"] = now_iso()
        transfer.update(extra)

    def _notify_transfer(
        self,
        transfer: dict[str, Any],
        notification_type: str,
        validation_error: dict[str, str] | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "transferId": transfer["transferId"],
            "status": transfer["transferStatus"],
            "modifiedOn": transfer["modifiedOn"],
            "notificationType": notification_type,
        }
        if validation_error:
            body["validationError"] = validation_error
        self.deliverer.notify("TRANSFER_NOTIFICATION", body, transfer["transferId"])

    async def _process_transfer(self, transfer_id: str, amount: Decimal) -> None:
        transfer = self.transfers[transfer_id]
        await asyncio.sleep(self.step_s)
        product = transfer["customerProductId"]
        if product not in self.balances:
            self._set_status(transfer, "INVALID")
            self._notify_transfer(
                transfer,
                "VALIDATION_ERROR",
                {
                    "errorType": "CUSTOMER_PRODUCT_NOT_FOUND_ERROR",
                    "description": "customerProductId not found",
                },
            )
            return
        self._set_status(transfer, "PENDING")
        self._notify_transfer(transfer, "CREATED")
        await asyncio.sleep(self.step_s)
        if amount > self.balances[product]:
            self._set_status(transfer, "REJECTED", rejectReason="INSUFFICIENT_BALANCE")
        else:
            self.balances[product] -= amount
            self._set_status(transfer, "PROCESSED")
        self._notify_transfer(transfer, "UPDATED")

    # -- truth --------------------------------------------------------------------------

    def ledger(self) -> list[dict[str, Any]]:
        return [
            {
                "partner": "tradevest",
                "kind": "transfer",
                "id": t["transferId"],
                "externalId": t["externalId"],
                "status": t["transferStatus"],
                "modifiedOn": t["modifiedOn"],
            }
            for t in self.transfers.values()
        ]
