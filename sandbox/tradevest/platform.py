"""The Tradevest fake's platform: state, auth, faults, generic GET/list endpoints, entity creation and status changes (each with its notification), the ledger."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.faults import Faults
from sandbox.tradevest.contract import (
    BALANCE_ACCOUNT_ID,
    CUSTOMER_ID,
    DEPOSITORY_ACCOUNT_ID,
    INITIAL_BALANCE,
    KINDS,
    NATURAL_PERSON_ID,
    UUID,
    WALLET_ID,
    Checker,
    Invalid,
    error,
    now_iso,
    page_bounds,
    visible,
)
from sandbox.webhooks import Deliverer


class Platform:
    def __init__(self, faults: Faults, deliverer: Deliverer, *, step_s: float = 0.2):
        self.faults = faults
        self.deliverer = deliverer
        self.step_s = step_s
        self.tokens: set[str] = set()
        self.store: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        self.create_requests: dict[str, int] = {}  # externalId -> POSTs received
        self.reads: dict[str, int] = {}  # entity id -> GETs answered with it
        self.action_requests: dict[str, int] = {}  # "DELETE /trading/order/{id}" -> received
        self.signatures: list[dict[str, Any]] = []  # POST /v2/documents/sign bodies
        self.external_ids: dict[str, str] = {}  # externalId -> entity id (kept after purge)
        self.balances: dict[str, Decimal] = {BALANCE_ACCOUNT_ID: INITIAL_BALANCE}
        self.tasks: set[asyncio.Task[None]] = set()
        self._fixtures()

    def _fixtures(self) -> None:
        stamp = now_iso()
        self.store["natural-person"][NATURAL_PERSON_ID] = {
            "naturalPersonId": NATURAL_PERSON_ID, "naturalPersonStatus": "ACTIVE",
            "firstName": "Erika", "lastName": "Mustermann", "createdOn": stamp, "modifiedOn": stamp,
        }  # fmt: skip
        self.store["customer"][CUSTOMER_ID] = {
            "customerId": CUSTOMER_ID, "customerStatus": "ACTIVE", "entityId": NATURAL_PERSON_ID,
            "entityType": "NATURAL_PERSON", "labels": [], "createdOn": stamp, "modifiedOn": stamp,
        }  # fmt: skip
        for pid, code in (
            (BALANCE_ACCOUNT_ID, "BALANCE_ACCOUNT"),
            (DEPOSITORY_ACCOUNT_ID, "DEPOSITORY_ACCOUNT"),
            (WALLET_ID, "CURRENCY_WALLET"),
        ):
            self.store["customer-product"][pid] = {
                "customerProductId": pid, "productCode": code, "status": "ACTIVE",
                "customerId": CUSTOMER_ID, "currency": "EUR", "createdOn": stamp, "modifiedOn": stamp,
            }  # fmt: skip

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.tokens

    async def faulted(self, request: Request) -> Response | None:
        """A fault that replaces the answer before the platform acts, if one is rolled."""
        await self.faults.delay()
        if self.faults.roll("rate_limit", request.method, request.url.path):
            response = error(429, "Too many requests", "RATE_LIMIT")
            response.headers["Retry-After"] = "1"
            return response
        if self.faults.roll("http_5xx", request.method, request.url.path):
            return error(503, "Service unavailable", "SERVICE_UNAVAILABLE")
        return None

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def api(
        self,
        create: Callable[[Request, Checker], Awaitable[Response]] | None,
        read: Callable[[Request], Awaitable[Response]] | None,
        *,
        requestor: bool = False,
    ) -> Callable[[Request], Awaitable[Response]]:
        """Auth, faults, JSON decoding and 400 mapping around a handler. `requestor`: the
        docs mark the create's Requestor-ID header `string · uuid Required`."""

        async def endpoint(request: Request) -> Response:
            if request.method == "GET" and read is not None:
                return await read(request)
            if not self.authorized(request):
                return error(401, "Unauthorized", "UNAUTHORIZED")
            if requestor and not UUID.match(request.headers.get("requestor-id", "")):
                return error(
                    400, "Requestor-ID header required", "VALIDATION_ERROR",
                    [{"field": "Requestor-ID", "errors": [{"code": "REQUIRED", "message": "uuid header required"}]}],
                )  # fmt: skip
            faulted = await self.faulted(request)
            if faulted is not None:
                return faulted
            raw = await request.body()
            try:
                body = json.loads(raw) if raw or request.method != "DELETE" else {}
            except ValueError:
                return error(400, "Body is not JSON", "BAD_REQUEST")
            if request.method != "POST" or request.url.path.endswith("/sign"):
                # actions on what exists (modify, cancel, close, sign), counted per target
                action = f"{request.method} {request.url.path}"
                self.action_requests[action] = self.action_requests.get(action, 0) + 1
            try:
                assert create is not None
                response = await create(request, Checker(body))
            except Invalid as exc:
                return error(400, "Validation failed", "VALIDATION_ERROR", exc.problems)
            if self.faults.roll("timeout", request.method, request.url.path):
                # the platform acted; the caller never hears back
                await asyncio.sleep(self.faults.timeout_ms / 1000)
            return response

        return endpoint

    def getter(
        self, kind: str, *, requestor: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        envelope = KINDS[kind][3]

        async def get(request: Request) -> Response:
            if not self.authorized(request):
                return error(401, "Unauthorized", "UNAUTHORIZED")
            if requestor and not UUID.match(request.headers.get("requestor-id", "")):
                return error(400, "Requestor-ID header required", "REQUESTOR_ID_REQUIRED")
            faulted = await self.faulted(request)
            if faulted is not None:
                return faulted
            entity = self.store[kind].get(request.path_params["id"])
            if entity is None:
                return error(404, "Not found", "NOT_FOUND")
            body = visible(entity)
            found = request.path_params["id"]
            self.reads[found] = self.reads.get(found, 0) + 1
            return JSONResponse({envelope: body} if envelope else body)

        return get

    def lister(
        self, kind: str, *, by: str | None = None, path_param: str = "productId",
        filters: dict[str, str] | None = None,
    ) -> Callable[[Request], Awaitable[Response]]:  # fmt: skip
        """Cursor-paged list: {data, pagination: {cursor, limit}}. Only the filters the docs
        give the endpoint (query name -> field) apply; other query parameters are ignored,
        as a server ignores parameters it does not know."""
        filters = filters or {}

        async def list_(request: Request) -> Response:
            if not self.authorized(request):
                return error(401, "Unauthorized", "UNAUTHORIZED")
            q = request.query_params
            try:
                limit, start = page_bounds(q)
            except ValueError:
                return error(400, "Bad cursor or limit", "BAD_REQUEST")
            items = list(self.store[kind].values())
            if by:
                items = [e for e in items if e.get(by) == request.path_params[path_param]]
            for name, field in filters.items():
                if name in q:
                    items = [e for e in items if e.get(field) == q[name]]
            page = items[start : start + limit]
            cursor = str(start + limit) if start + limit < len(items) else None
            return JSONResponse(
                {
                    "data": [visible(e) for e in page],
                    "pagination": {"cursor": cursor, "limit": limit},
                }
            )

        return list_

    def list_plain(self, kind: str) -> Callable[[Request], Awaitable[Response]]:
        """Plain array (onboardings, offboardings), filtered by entityType + entityId."""

        async def list_(request: Request) -> Response:
            if not self.authorized(request):
                return error(401, "Unauthorized", "UNAUTHORIZED")
            q = request.query_params
            entity_type = q.get("entityType") or q.get("offboardingEntityType")
            items = [
                visible(e)
                for e in self.store[kind].values()
                if e.get("entityId") == q.get("entityId") and e.get("entityType") == entity_type
            ]
            return JSONResponse(items)

        return list_

    async def list_products(self, request: Request) -> Response:
        if not self.authorized(request):
            return error(401, "Unauthorized", "UNAUTHORIZED")
        customer = request.path_params["customerId"]
        return JSONResponse(
            [
                visible(p)
                for p in self.store["customer-product"].values()
                if p.get("customerId") == customer
            ]
        )

    def _claim_external_id(self, check: Checker) -> str | None:
        external_id = check.body.get("externalId")
        if external_id is None:
            return None
        if not isinstance(external_id, str) or not external_id:
            raise Invalid(
                [{"field": "externalId", "errors": [{"code": "LENGTH", "message": "min length 1"}]}]
            )
        self.create_requests[external_id] = self.create_requests.get(external_id, 0) + 1
        return external_id

    def _new(self, kind: str, fields: dict[str, Any], status: str = "RECEIVED") -> dict[str, Any]:
        _, id_field, status_field, _ = KINDS[kind]
        stamp = now_iso()
        entity = {
            id_field: str(uuid.uuid4()),
            status_field: status,
            "createdOn": stamp,
            "modifiedOn": stamp,
        }
        entity.update({k: v for k, v in fields.items() if k not in entity})
        self.store[kind][entity[id_field]] = entity
        if entity.get("externalId"):
            self.external_ids[entity["externalId"]] = entity[id_field]
        return entity

    def _create(
        self,
        kind: str,
        check: Checker,
        progress: Callable[[dict[str, Any]], Awaitable[None]],
        extra: dict[str, Any] | None = None,
    ) -> Response:
        """Duplicate check on externalId (409; counted in the ledger), then RECEIVED."""
        external_id = self._claim_external_id(check)
        if external_id is not None and external_id in self.external_ids:
            return error(409, "externalId already used", "DUPLICATE_EXTERNAL_ID")
        entity = self._new(kind, {**check.body, **(extra or {})})
        self.spawn(self._run(progress, entity))
        id_field = KINDS[kind][1]
        return JSONResponse({id_field: entity[id_field], "createdOn": entity["createdOn"]})

    async def _run(
        self, progress: Callable[[dict[str, Any]], Awaitable[None]], entity: dict[str, Any]
    ) -> None:
        try:
            await progress(entity)
        except asyncio.CancelledError:
            raise

    async def step(self) -> None:
        await asyncio.sleep(self.step_s)

    def set_status(
        self,
        kind: str,
        entity: dict[str, Any],
        status: str,
        notification_type: str = "UPDATED",
        validation_error: dict[str, str] | None = None,
        **fields: Any,
    ) -> None:
        event_type, id_field, status_field, _ = KINDS[kind]
        entity[status_field] = status
        entity["modifiedOn"] = now_iso()
        entity.update(fields)
        if not event_type:
            return  # transactions have no webhook
        body: dict[str, Any] = {
            id_field: entity[id_field],
            "status": status,
            "modifiedOn": entity["modifiedOn"],
            "notificationType": notification_type,
        }
        if kind == "identification-verification":
            body["naturalPersonId"] = entity["naturalPersonId"]
        if kind.endswith("-order") and entity.get("externalId"):
            body["externalId"] = entity["externalId"]
        if validation_error:
            body["validationError"] = validation_error
        self.deliverer.notify(event_type, body, entity[id_field])

    def invalid(self, kind: str, entity: dict[str, Any], error_type: str, description: str) -> None:
        self.set_status(
            kind, entity, "INVALID", "VALIDATION_ERROR",
            {"errorType": error_type, "description": description},
        )  # fmt: skip

    def reject_update(
        self, kind: str, entity: dict[str, Any], error_type: str, description: str
    ) -> None:
        """A rejected update: VALIDATION_ERROR without status or modifiedOn (reference §3)."""
        event_type, id_field, _, _ = KINDS[kind]
        body = {
            id_field: entity[id_field],
            "notificationType": "VALIDATION_ERROR",
            "validationError": {"errorType": error_type, "description": description},
        }
        self.deliverer.notify(event_type, body, entity[id_field])

    # natural persons: INVALID when firstName is "Invalid"; REJECTED when lastName is "Rejected"

    def _book(self, customer_id: str | None, transaction_type: str, **detail: Any) -> None:
        if customer_id is None:
            return
        today = date.today().isoformat()
        self._new(
            "transaction",
            {"customerId": customer_id, "transactionType": transaction_type,
             "bookingDate": today, "valueDate": today, **detail},
            status="BOOKED",
        )  # fmt: skip

    # traditional orders: INVALID for unknown products; REJECTED for an ISIN starting XX;
    # PARTIALLY_FILLED first above 10 units; an update (PATCH) of a filled order is rejected

    def _unknown_products(self, order: dict[str, Any], *fields: str) -> bool:
        """An order naming a customer product the sandbox does not have."""
        return any(order[f] not in self.store["customer-product"] for f in fields)

    def ledger(self) -> list[dict[str, Any]]:
        out = []
        for kind, (_, id_field, status_field, _) in KINDS.items():
            for e in self.store[kind].values():
                out.append({
                    "partner": "tradevest", "kind": kind, "id": e[id_field],
                    "externalId": e.get("externalId"), "status": e.get(status_field),
                    "modifiedOn": e.get("modifiedOn"),
                })  # fmt: skip
        return out
