"""Tradevest under /tradevest, faithful to shared/reference/tradevest-api.md.

Creates are validated synchronously (400 with an ErrorMessage, 409 on a reused externalId),
answered RECEIVED, then processed asynchronously with a notification per status change:
RECEIVED → INVALID (a reference that does not exist) | the kind's created status → … .
Deterministic triggers let tests pick a branch (documented in `_progress_*`).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, date, datetime
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

# Fixtures: an active natural person and customer with one balance account.
NATURAL_PERSON_ID = "0b6f7c1e-2a4d-4f7e-9c3b-5d8e1f2a3b01"
CUSTOMER_ID = "5b0f0a52-6a43-4c42-9a8e-0c7f1f3e9a01"
BALANCE_ACCOUNT_ID = "8f14e45f-ceea-4e7a-8a3b-1d6b7f0c2d11"
DEPOSITORY_ACCOUNT_ID = "8f14e45f-ceea-4e7a-8a3b-1d6b7f0c2d12"
WALLET_ID = "8f14e45f-ceea-4e7a-8a3b-1d6b7f0c2d13"
INITIAL_BALANCE = Decimal("1000000.00")

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{10}$")


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


class Invalid(Exception):
    """Synchronous validation failed: 400 with errorDetails."""

    def __init__(self, problems: list[dict[str, Any]]):
        self.problems = problems


class Checker:
    def __init__(self, body: Any):
        if not isinstance(body, dict):
            raise Invalid(
                [{"field": "$", "errors": [{"code": "TYPE", "message": "must be an object"}]}]
            )
        self.body = body
        self.problems: list[dict[str, Any]] = []

    def bad(self, field: str, code: str, message: str) -> None:
        self.problems.append({"field": field, "errors": [{"code": code, "message": message}]})

    def text(self, field: str, lo: int = 1, hi: int = 255, required: bool = True) -> None:
        value = self.body.get(field)
        if value is None and not required:
            return
        if not isinstance(value, str) or not lo <= len(value) <= hi:
            self.bad(field, "LENGTH", f"{lo} to {hi} characters")

    def uuid(self, field: str, required: bool = True) -> None:
        value = self.body.get(field)
        if value is None and not required:
            return
        if not isinstance(value, str) or not _UUID.match(value):
            self.bad(field, "FORMAT", "must be a uuid")

    def choice(self, field: str, allowed: tuple[str, ...]) -> None:
        if self.body.get(field) not in allowed:
            self.bad(field, "ENUM", f"one of {', '.join(allowed)}")

    def boolean(self, field: str) -> None:
        if not isinstance(self.body.get(field), bool):
            self.bad(field, "TYPE", "must be a boolean")

    def amount(self, field: str, step: str = "0.01") -> Decimal | None:
        try:
            value = Decimal(str(self.body.get(field)))
            if not value.is_finite() or value <= 0 or value != value.quantize(Decimal(step)):
                raise InvalidOperation
            return value
        except (InvalidOperation, ValueError):
            self.bad(field, "FORMAT", f"must be > 0, a multiple of {step}")
            return None

    def done(self) -> None:
        if self.problems:
            raise Invalid(self.problems)


# kind -> (EventTypeEnum value, id field, status field, GET envelope)
KINDS: dict[str, tuple[str, str, str, str | None]] = {
    "natural-person": ("NATURAL_PERSON_NOTIFICATION", "naturalPersonId", "naturalPersonStatus", None),
    "legal-entity": ("LEGAL_ENTITY_NOTIFICATION", "legalEntityId", "status", None),
    "legal-representative": ("LEGAL_REPRESENTATIVE_NOTIFICATION", "legalRepresentativeId", "status", None),
    "identification-verification": (
        "IDENTIFICATION_VERIFICATION_NOTIFICATION", "identificationVerificationId", "status", None,
    ),
    "customer": ("CUSTOMER_NOTIFICATION", "customerId", "customerStatus", None),
    "customer-product": ("CUSTOMER_PRODUCT_NOTIFICATION", "customerProductId", "status", None),
    "document": ("DOCUMENT_NOTIFICATION", "documentId", "status", None),
    "onboarding": ("ONBOARDING_NOTIFICATION", "onboardingId", "status", None),
    "offboarding": ("OFFBOARDING_NOTIFICATION", "offboardingId", "status", None),
    "transfer": ("TRANSFER_NOTIFICATION", "transferId", "transferStatus", "transfer"),
    "traditional-order": ("TRADITIONAL_ASSET_ORDER_NOTIFICATION", "orderId", "status", None),
    "digital-order": ("DIGITAL_ASSET_ORDER_NOTIFICATION", "orderId", "status", None),
    "transaction": ("", "transactionId", "transactionStatus", None),
    "strategy": ("STRATEGY_NOTIFICATION", "strategyId", "status", None),
}  # fmt: skip


# EventTypeEnum: the 24 values of Tradevest's webhook schemas (reference §2). WAWEX's two
# additions are not Tradevest's.
EVENT_TYPE_ENUM = frozenset(
    {
        "CUSTOMER_NOTIFICATION", "NATURAL_PERSON_NOTIFICATION", "IDENTIFICATION_VERIFICATION_NOTIFICATION",
        "DOCUMENT_NOTIFICATION", "PARTNER_DOCUMENT_NOTIFICATION", "ONBOARDING_NOTIFICATION",
        "CUSTOMER_PRODUCT_NOTIFICATION", "LEGAL_ENTITY_SEARCH_NOTIFICATION", "LABELS_UPDATE_NOTIFICATION",
        "TRANSFER_NOTIFICATION", "DIGITAL_ASSET_ORDER_NOTIFICATION", "PROXY_NOTIFICATION",
        "BENEFICIAL_OWNER_NOTIFICATION", "USER_NOTIFICATION", "RE_TOKEN_PRICES",
        "STRATEGY_NOTIFICATION", "OFFBOARDING_NOTIFICATION", "LEGAL_ENTITY_NOTIFICATION",
        "LEGAL_REPRESENTATIVE_NOTIFICATION", "TRADITIONAL_ASSET_ORDER_NOTIFICATION", "PARTNER_NOTIFICATION",
        "JOINT_PERSON_NOTIFICATION", "TAX_EXEMPTION_ORDER_NOTIFICATION", "CORPORATE_ACTION_NOTIFICATION",
    }
)  # fmt: skip

# The list filters the docs give (query name -> field). transfers and traditional orders:
# [inferred] externalId filters (their list endpoints were not published), after the digital
# orders' documented one.
CUSTOMER_FILTERS = {
    "entityId": "entityId",
    "customerStatus": "customerStatus",
    "customerType": "entityType",
}
DOCUMENT_FILTERS = {"resourceType": "resourceType", "resourceId": "resourceId", "docType": "type"}


class Tradevest:
    def __init__(self, faults: Faults, deliverer: Deliverer, *, step_s: float = 0.2):
        self.faults = faults
        self.deliverer = deliverer
        self.step_s = step_s
        self.tokens: set[str] = set()
        self.store: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        self.create_requests: dict[str, int] = {}  # externalId -> POSTs received
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

    # -- plumbing ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        r = Route
        return [
            r("/oauth2/token", self.token, methods=["POST"]),
            r("/connect/token", self.token, methods=["POST"]),
            r("/webhooks", self.webhooks, methods=["GET", "POST"]),
            r("/webhooks/{eventType}", self.webhook, methods=["GET", "DELETE"]),
            r("/webhooks-missing", self.webhooks_missing, methods=["GET"]),
            r("/undelivered-webhooks", self.undelivered_webhooks, methods=["GET"]),
            r("/entities/natural-persons", self.api(self.create_natural_person, self.lister("natural-person", filters={"status": "naturalPersonStatus"})), methods=["GET", "POST"]),
            r("/entities/natural-persons/{id}", self.getter("natural-person"), methods=["GET"]),
            r("/entities/legal-entities", self.api(self.create_legal_entity, self.lister("legal-entity", filters={"status": "status"})), methods=["GET", "POST"]),
            r("/entities/legal-entities/{id}", self.getter("legal-entity"), methods=["GET"]),
            r("/entities/{legalEntityId}/legal-representatives", self.api(self.create_legal_representative, None, requestor=True), methods=["POST"]),
            r("/entities/legal-representatives/{id}", self.getter("legal-representative"), methods=["GET"]),
            r("/entities/identification-verifications", self.api(self.create_identification, self.lister("identification-verification"), requestor=True), methods=["GET", "POST"]),
            r("/entities/identification-verifications/{id}", self.getter("identification-verification", requestor=True), methods=["GET"]),
            r("/roles/customers", self.api(self.create_customer, self.lister("customer", filters=CUSTOMER_FILTERS), requestor=True), methods=["GET", "POST"]),
            r("/roles/customers/labels", self.api(self.update_labels, None), methods=["POST"]),
            r("/roles/customers/{id}", self.getter("customer"), methods=["GET"]),
            r("/customers/{customerId}/products", self.api(self.create_product, self.list_products, requestor=True), methods=["GET", "POST"]),
            r("/products/{id}", self.getter("customer-product"), methods=["GET"]),
            r("/v2/documents", self.api(self.create_document, self.lister("document", filters=DOCUMENT_FILTERS)), methods=["GET", "POST"]),
            r("/v2/documents/{id}", self.getter("document"), methods=["GET"]),
            r("/onboardings", self.api(self.create_onboarding, self.list_plain("onboarding"), requestor=True), methods=["GET", "POST"]),
            r("/onboardings/{id}", self.getter("onboarding"), methods=["GET"]),
            r("/entities/offboardings", self.api(self.create_offboarding, self.list_plain("offboarding"), requestor=True), methods=["GET", "POST"]),
            r("/entities/offboardings/{id}", self.getter("offboarding"), methods=["GET"]),
            r("/transfers", self.api(self.create_transfer, self.lister("transfer", filters={"externalId": "externalId"})), methods=["GET", "POST"]),
            r("/transfers/{id}", self.getter("transfer"), methods=["GET"]),
            r("/trading/order/{orderType}", self.api(self.create_traditional_order, None, requestor=True), methods=["POST"]),
            r("/trading/order/{id}", self.api(self.update_traditional_order, self.getter("traditional-order"), requestor=True), methods=["GET", "PATCH"]),
            r("/products/{productId}/trading/orders", self.lister("traditional-order", by="depositoryCustomerProductId", filters={"externalId": "externalId"}), methods=["GET"]),
            r("/digital/orders/market", self.api(self.create_digital_order, None, requestor=True), methods=["POST"]),
            r("/digital/orders/{id}", self.getter("digital-order"), methods=["GET"]),
            r("/products/{productId}/digital/orders", self.lister("digital-order", by="walletCustomerProductId", filters={"externalId": "externalId"}), methods=["GET"]),
            r("/transactions/{id}", self.getter("transaction"), methods=["GET"]),
            r("/customers/{customerId}/transactions", self.lister("transaction", by="customerId", path_param="customerId", filters={"transactionType": "transactionType"}), methods=["GET"]),
            r("/strategies", self.api(self.create_strategy, self.lister("strategy"), requestor=True), methods=["GET", "POST"]),
            r("/strategies/{id}", self.getter("strategy"), methods=["GET"]),
        ]  # fmt: skip

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
            if requestor and not _UUID.match(request.headers.get("requestor-id", "")):
                return error(
                    400, "Requestor-ID header required", "VALIDATION_ERROR",
                    [{"field": "Requestor-ID", "errors": [{"code": "REQUIRED", "message": "uuid header required"}]}],
                )  # fmt: skip
            faulted = await self.faulted(request)
            if faulted is not None:
                return faulted
            try:
                body = json.loads(await request.body())
            except ValueError:
                return error(400, "Body is not JSON", "BAD_REQUEST")
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
            if requestor and not _UUID.match(request.headers.get("requestor-id", "")):
                return error(400, "Requestor-ID header required", "REQUESTOR_ID_REQUIRED")
            faulted = await self.faulted(request)
            if faulted is not None:
                return faulted
            entity = self.store[kind].get(request.path_params["id"])
            if entity is None:
                return error(404, "Not found", "NOT_FOUND")
            body = _visible(entity)
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
                limit = max(1, min(int(q.get("limit", "20")), 500))
                start = int(q.get("cursor") or 0)
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
                    "data": [_visible(e) for e in page],
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
                _visible(e)
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
                _visible(p)
                for p in self.store["customer-product"].values()
                if p.get("customerId") == customer
            ]
        )

    # -- entities: create, then progress -------------------------------------------------

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
    async def create_natural_person(self, request: Request, check: Checker) -> Response:
        for name in ("firstName", "lastName", "birthPlace"):
            check.text(name)
        check.choice("gender", ("MALE", "FEMALE", "DIVERSE"))
        check.text("birthDay", 10, 10)
        check.text("birthCountry", 2, 2)
        check.boolean("isUsNationality")
        check.done()
        return self._create("natural-person", check, self._progress_natural_person)

    async def _progress_natural_person(self, np: dict[str, Any]) -> None:
        await self.step()
        if np.get("firstName") == "Invalid":
            return self.invalid(
                "natural-person", np, "ALREADY_EXISTS_ERROR", "natural person already exists"
            )
        self.set_status("natural-person", np, "CREATED", "CREATED")
        await self.step()
        final = "REJECTED" if np.get("lastName") == "Rejected" else "ACTIVE"
        self.set_status("natural-person", np, final)

    # legal entities: INVALID when legalName starts with "Invalid"
    async def create_legal_entity(self, request: Request, check: Checker) -> Response:
        for name in (
            "legalName",
            "legalForm",
            "registerCountry",
            "registerNumber",
            "registerCourt",
            "taxNumber",
        ):
            check.text(name)
        check.text("foundedOn", 10, 10)
        check.done()
        return self._create("legal-entity", check, self._progress_legal_entity)

    async def _progress_legal_entity(self, le: dict[str, Any]) -> None:
        await self.step()
        if str(le.get("legalName", "")).startswith("Invalid"):
            return self.invalid("legal-entity", le, "VALIDATION_FAILED", "register entry not found")
        self.set_status("legal-entity", le, "CREATED", "CREATED")
        await self.step()
        self.set_status("legal-entity", le, "ACTIVE")

    # legal representatives: INVALID when the legal entity is unknown
    async def create_legal_representative(self, request: Request, check: Checker) -> Response:
        for name in ("firstName", "lastName", "birthPlace", "function"):
            check.text(name)
        check.text("birthDay", 10, 10)
        check.done()
        le = request.path_params["legalEntityId"]
        return self._create(
            "legal-representative",
            check,
            self._progress_legal_representative,
            {"legalEntityId": le},
        )

    async def _progress_legal_representative(self, lr: dict[str, Any]) -> None:
        await self.step()
        if lr["legalEntityId"] not in self.store["legal-entity"]:
            return self.invalid(
                "legal-representative", lr, "LEGAL_ENTITY_NOT_FOUND_ERROR", "no such legal entity"
            )
        self.set_status("legal-representative", lr, "CREATED", "CREATED")

    # identification verifications: INVALID for an unknown natural person; APPROVED makes
    # the platform create an IDENTIFICATION_CERTIFICATE document (an id never seen before)
    async def create_identification(self, request: Request, check: Checker) -> Response:
        check.uuid("naturalPersonId")
        check.choice("externalVerifier", ("WEB_ID",))
        check.choice("identificationType", ("VIDEO_IDENT",))
        check.done()
        return self._create("identification-verification", check, self._progress_identification)

    async def _progress_identification(self, iv: dict[str, Any]) -> None:
        kind = "identification-verification"
        await self.step()
        if iv["naturalPersonId"] not in self.store["natural-person"]:
            return self.invalid(
                kind, iv, "NATURAL_PERSON_NOT_FOUND_ERROR", "no such natural person"
            )
        self.set_status(
            kind,
            iv,
            "PENDING",
            "CREATED",
            identificationUrl=f"https://ident.example/{iv['identificationVerificationId']}",
        )
        await self.step()
        document = self._new(
            "document",
            {"resourceType": "NATURAL_PERSON", "resourceId": iv["naturalPersonId"],
             "type": "IDENTIFICATION_CERTIFICATE", "name": "identification.pdf", "size": 120},
            status="CREATED",
        )  # fmt: skip
        self.set_status("document", document, "CREATED", "CREATED")
        self.set_status(kind, iv, "APPROVED", documentId=document["documentId"])
        await self.step()
        self.set_status("document", document, "APPROVED")

    # customers: INVALID when the entity is unknown; ACTIVE once onboarded
    async def create_customer(self, request: Request, check: Checker) -> Response:
        check.uuid("entityId")
        check.choice("entityType", ("NATURAL_PERSON", "LEGAL_ENTITY", "JOINT_PERSON"))
        labels = check.body.get("labels", [])
        if not isinstance(labels, list) or len(labels) > 16:
            check.bad("labels", "MAX_ITEMS", "up to 16 strings")
        check.done()
        return self._create("customer", check, self._progress_customer, {"labels": labels})

    async def _progress_customer(self, customer: dict[str, Any]) -> None:
        await self.step()
        known = (
            customer["entityId"] in self.store["natural-person"]
            or customer["entityId"] in self.store["legal-entity"]
        )
        if not known:
            return self.invalid("customer", customer, "ENTITY_NOT_FOUND_ERROR", "no such entity")
        self.set_status("customer", customer, "CREATED", "CREATED")

    # labels [inferred path]: {customerIds, labels} → one LABELS_UPDATE_NOTIFICATION
    async def update_labels(self, request: Request, check: Checker) -> Response:
        ids = check.body.get("customerIds")
        labels = check.body.get("labels")
        if not isinstance(ids, list) or not ids or not isinstance(labels, list):
            check.bad("customerIds", "REQUIRED", "customerIds and labels are required lists")
        check.done()
        assert isinstance(ids, list)  # check.done() raised otherwise
        found = [c for c in ids if c in self.store["customer"]]
        for c in found:
            customer = self.store["customer"][c]
            customer["labels"] = labels
            customer["modifiedOn"] = now_iso()
        body: dict[str, Any] = {"updatedCustomers": found, "notificationType": "UPDATED"}
        if len(found) < len(ids):
            body["notificationType"] = "VALIDATION_ERROR"
            body["validationError"] = {
                "errorType": "CUSTOMERS_NOT_FOUND_ERROR",
                "description": "some customers not found",
            }
        self.deliverer.notify("LABELS_UPDATE_NOTIFICATION", body, ",".join(found))
        return Response(status_code=202)

    # onboardings: CREATED → PENDING → APPROVED (customer ACTIVE) | REJECTED when the
    # customer carries the label REJECT_ONBOARDING; INVALID for an unknown entity
    async def create_onboarding(self, request: Request, check: Checker) -> Response:
        check.choice("entityType", ("CUSTOMER", "PROXY", "BENEFICIAL_OWNER"))
        check.uuid("entityId")
        check.done()
        external_id = self._claim_external_id(check)
        if external_id is not None and external_id in self.external_ids:
            return error(409, "externalId already used", "DUPLICATE_EXTERNAL_ID")
        onboarding = self._new("onboarding", check.body, status="CREATED")
        self.spawn(self._run(self._progress_onboarding, onboarding))
        return JSONResponse({"onboardingId": onboarding["onboardingId"]})

    async def _progress_onboarding(self, ob: dict[str, Any]) -> None:
        customer = self.store["customer"].get(ob["entityId"])
        if customer is None:
            await self.step()
            return self.invalid("onboarding", ob, "ENTITY_NOT_FOUND_ERROR", "no such customer")
        self.set_status("onboarding", ob, "CREATED", "CREATED")
        await self.step()
        self.set_status("onboarding", ob, "PENDING")
        await self.step()
        if "REJECT_ONBOARDING" in customer.get("labels", []):
            return self.set_status("onboarding", ob, "REJECTED", rejectionReason="KYC_CHECK_FAILED")
        self.set_status("onboarding", ob, "APPROVED")
        self.set_status("customer", customer, "ACTIVE")

    # customer products: INVALID for an unknown customer
    async def create_product(self, request: Request, check: Checker) -> Response:
        check.choice(
            "productCode", ("WALLET", "BALANCE_ACCOUNT", "DEPOSITORY_ACCOUNT", "CURRENCY_WALLET")
        )
        check.done()
        customer = request.path_params["customerId"]
        return self._create(
            "customer-product",
            check,
            self._progress_product,
            {"customerId": customer, "currency": "EUR"},
        )

    async def _progress_product(self, product: dict[str, Any]) -> None:
        await self.step()
        if product["customerId"] not in self.store["customer"]:
            return self.invalid(
                "customer-product", product, "CUSTOMERS_NOT_FOUND_ERROR", "no such customer"
            )
        self.set_status("customer-product", product, "PENDING", "CREATED")
        await self.step()
        if product["productCode"] == "BALANCE_ACCOUNT":
            self.balances[product["customerProductId"]] = Decimal("10000.00")
        self.set_status("customer-product", product, "ACTIVE")

    # documents [inferred JSON upload]: INVALID when the resource is unknown
    async def create_document(self, request: Request, check: Checker) -> Response:
        check.choice(
            "resourceType",
            ("NATURAL_PERSON", "LEGAL_ENTITY", "PARTNER_USER", "CUSTOMER", "PROXY", "JOINT_PERSON"),
        )
        check.uuid("resourceId")
        check.text("type", 1, 64)
        check.text("name")
        check.text("content", 1, 10_000_000)
        check.done()
        extra = {"size": len(check.body["content"]) * 3 // 4 // 1024}
        return self._create("document", check, self._progress_document, extra)

    async def _progress_document(self, document: dict[str, Any]) -> None:
        await self.step()
        resource = document["resourceId"]
        if not any(
            resource in self.store[k] for k in ("natural-person", "legal-entity", "customer")
        ):
            return self.invalid(
                "document", document, "RESOURCE_NOT_FOUND_ERROR", "no such resource"
            )
        self.set_status("document", document, "CREATED", "CREATED")
        await self.step()
        self.set_status("document", document, "APPROVED")

    # offboardings: INVALID for an unknown entity
    async def create_offboarding(self, request: Request, check: Checker) -> Response:
        check.choice("entityType", ("CUSTOMER", "NATURAL_PERSON", "LEGAL_ENTITY"))
        check.uuid("entityId")
        check.text("reason", 1, 64)
        check.done()
        return self._create("offboarding", check, self._progress_offboarding)

    async def _progress_offboarding(self, ob: dict[str, Any]) -> None:
        await self.step()
        if not any(
            ob["entityId"] in self.store[k] for k in ("customer", "natural-person", "legal-entity")
        ):
            return self.invalid("offboarding", ob, "ENTITY_NOT_FOUND_ERROR", "no such entity")
        self.set_status("offboarding", ob, "PENDING", "CREATED")
        await self.step()
        self.set_status("offboarding", ob, "COMPLETED")

    # transfers: INVALID for an unknown customerProductId; REJECTED above the balance
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
    async def create_traditional_order(self, request: Request, check: Checker) -> Response:
        order_type = request.path_params["orderType"].upper()
        if order_type not in ("MARKET", "LIMIT", "STOP"):
            return error(404, "Not found", "NOT_FOUND")
        check.uuid("depositoryCustomerProductId")
        check.uuid("cashCustomerProductId")
        check.choice("tradeSide", ("BUY", "SELL"))
        check.choice("exchangeCode", ("TGAT", "XFRA"))
        if not isinstance(check.body.get("isin"), str) or not _ISIN.match(check.body["isin"]):
            check.bad("isin", "PATTERN", "^[A-Z]{2}[A-Z0-9]{10}$")
        check.amount("quantity", "1")
        if not check.body.get("externalId"):
            check.bad("externalId", "REQUIRED", "required")
        check.done()
        return self._create("traditional-order", check, self._progress_traditional_order,
                            {"orderType": order_type, "quantityType": "UNIT", "exAnteId": str(uuid.uuid4())})  # fmt: skip

    def _unknown_products(self, order: dict[str, Any], *fields: str) -> bool:
        """An order naming a customer product the sandbox does not have."""
        return any(order[f] not in self.store["customer-product"] for f in fields)

    async def _progress_traditional_order(self, order: dict[str, Any]) -> None:
        kind = "traditional-order"
        await self.step()
        if self._unknown_products(order, "depositoryCustomerProductId", "cashCustomerProductId"):
            return self.invalid(
                kind, order, "CUSTOMER_PRODUCT_NOT_FOUND_ERROR", "unknown customer product"
            )
        self.set_status(kind, order, "PENDING", "CREATED")
        await self.step()
        self.set_status(kind, order, "PLACED")
        await self.step()
        if order["isin"].startswith("XX"):
            return self.set_status(
                kind, order, "REJECTED", message="rejected by the exchange: unknown instrument"
            )
        if Decimal(str(order["quantity"])) > 10:
            self.set_status(kind, order, "PARTIALLY_FILLED")
            await self.step()
        self.set_status(kind, order, "FILLED")
        customer = self.store["customer-product"][order["cashCustomerProductId"]].get("customerId")
        self._book(
            customer,
            "TRADE",
            traditionalTradingTransaction={"orderId": order["orderId"], "isin": order["isin"]},
        )
        await self.step()
        self.set_status(kind, order, "SETTLED")

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
            check = Checker(json.loads(await request.body()))
        except (ValueError, Invalid):
            return error(400, "Body must be a JSON object", "BAD_REQUEST")
        body = check.body
        if body.get("eventType") not in EVENT_TYPE_ENUM:
            check.bad("eventType", "ENUM", "must be an EventTypeEnum value")
        url = body.get("url")
        # The platform requires HTTPS; the sandbox also lets loopback http through.
        if not isinstance(url, str) or not url.startswith(
            ("https://", "http://127.", "http://localhost")
        ):
            check.bad("url", "PATTERN", "The URL must be HTTPS.")
        headers = body.get("headers", [])
        if not isinstance(headers, list) or len(headers) > 5:
            check.bad("headers", "MAX_ITEMS", "at most 5")
        elif any(
            not isinstance(h, dict) or not re.match(r"^\S+$", str(h.get("name", "")))
            for h in headers
        ):
            check.bad("headers", "PATTERN", "name must match ^\\S+$")
        if check.problems:
            return error(400, "Validation failed", "VALIDATION_ERROR", check.problems)
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

    async def webhooks_missing(self, request: Request) -> Response:
        """[inferred item shape] {eventType, payload, createdOn} of notifications not delivered."""
        if not self.authorized(request):
            return error(401, "Unauthorized", "UNAUTHORIZED")
        return JSONResponse(
            [{"eventType": u["eventType"], "payload": u["payload"], "createdOn": u["createdOn"]}
             for u in self.deliverer.undelivered]
        )  # fmt: skip

    async def undelivered_webhooks(self, request: Request) -> Response:
        """Cursor-paged, `startDate` filter; [inferred response] {data, pagination}."""
        if not self.authorized(request):
            return error(401, "Unauthorized", "UNAUTHORIZED")
        q = request.query_params
        try:
            limit = max(1, min(int(q.get("limit", "20")), 500))
            start = int(q.get("cursor") or 0)
        except ValueError:
            return error(400, "Bad cursor or limit", "BAD_REQUEST")
        items = self.deliverer.undelivered
        if "startDate" in q:
            items = [u for u in items if u["createdOn"] >= q["startDate"]]
        page = items[start : start + limit]
        cursor = str(start + limit) if start + limit < len(items) else None
        return JSONResponse({"data": page, "pagination": {"cursor": cursor, "limit": limit}})

    # -- truth --------------------------------------------------------------------------

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


def _visible(entity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if v is not None}
