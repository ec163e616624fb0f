"""The Tradevest fake's fixtures, request checks and tables (kinds, event types, filters)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.responses import JSONResponse

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

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{10}$")


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
        if not isinstance(value, str) or not UUID.match(value):
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


def visible(entity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if v is not None}


def page_bounds(query: Mapping[str, str]) -> tuple[int, int]:
    """(limit, start) of a cursor-paged list: limit 1..500 (default 20), the cursor an
    offset. Raises ValueError on a non-integer one."""
    return max(1, min(int(query.get("limit", "20")), 500)), int(query.get("cursor") or 0)
