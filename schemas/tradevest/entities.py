"""Tradevest entities as their GET endpoints return them (reference §4).

Only the fields partnersync relies on are typed; the store keeps the whole body as the
partner sent it. Status enums are kept open (plain strings): an unknown status is stored
and reported, never a decode error. [inferred] marks shapes the public docs did not show.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

import msgspec

from schemas.sensitive import Sensitive


class Entity(msgspec.Struct, kw_only=True):
    createdOn: datetime | None = None
    modifiedOn: datetime | None = None
    externalId: str | None = None


class NaturalPerson(Entity, kw_only=True):
    naturalPersonId: uuid.UUID
    globalId: str | None = None
    firstName: Annotated[str, Sensitive] | None = None
    lastName: Annotated[str, Sensitive] | None = None
    birthDay: Annotated[date, Sensitive] | None = None
    # [F-m] shows naturalPersonStatus; the list filter and webhooks say status
    naturalPersonStatus: str | None = None
    status: str | None = None


class LegalEntity(Entity, kw_only=True):
    legalEntityId: uuid.UUID
    status: str | None = None  # [inferred] by the natural-person pattern
    legalEntityStatus: str | None = None


class LegalRepresentative(Entity, kw_only=True):
    legalRepresentativeId: uuid.UUID
    legalEntityId: uuid.UUID | None = None
    status: str | None = None  # [inferred]


class IdentificationVerification(Entity, kw_only=True):
    identificationVerificationId: uuid.UUID
    naturalPersonId: uuid.UUID
    status: str
    externalVerifier: str | None = None
    identificationType: str | None = None
    identificationUrl: str | None = None
    documentId: uuid.UUID | None = None  # appears after approval [F-m]


class Customer(Entity, kw_only=True):
    customerId: uuid.UUID
    customerStatus: str
    entityId: uuid.UUID | None = None
    entityType: str | None = None
    labels: list[str] = []


class CustomerProduct(Entity, kw_only=True):
    customerProductId: uuid.UUID
    status: str
    productCode: str | None = None
    productType: str | None = None
    currency: str | None = None
    customerId: uuid.UUID | None = None  # [inferred]: the GET by id is not documented


class Document(Entity, kw_only=True):
    documentId: uuid.UUID
    status: str
    resourceId: uuid.UUID | None = None
    resourceType: str | None = None
    type: str | None = None
    name: str | None = None


class Onboarding(Entity, kw_only=True):
    onboardingId: uuid.UUID
    status: str
    entityType: str | None = None  # older API
    entityId: uuid.UUID | None = None
    roleType: str | None = None  # newer /roles/onboardings
    roleId: uuid.UUID | None = None


class Offboarding(Entity, kw_only=True):
    offboardingId: uuid.UUID
    status: str
    entityType: str | None = None
    entityId: uuid.UUID | None = None
    reason: str | None = None


class TraditionalOrder(Entity, kw_only=True):
    orderId: uuid.UUID
    status: str
    isin: str | None = None
    tradeSide: str | None = None
    orderType: str | None = None
    depositoryCustomerProductId: uuid.UUID | None = None
    cashCustomerProductId: uuid.UUID | None = None
    message: str | None = None


class MarketOrderData(msgspec.Struct, kw_only=True, omit_defaults=True):
    symbol: str | None = None
    assetType: str | None = None  # e.g. CRYPTOCURRENCY
    quantityType: str | None = None
    quantity: Decimal | None = None


class ExecutionData(msgspec.Struct, kw_only=True, omit_defaults=True):
    quantity: Decimal | None = None
    executionPrice: Decimal | None = None
    executionAmount: Decimal | None = None


class DigitalOrder(Entity, kw_only=True):
    """DigitalAssetsOrder: what was ordered sits in marketOrderData, not at the top."""

    orderId: uuid.UUID
    status: str
    walletCustomerProductId: uuid.UUID | None = None
    cashCustomerProductId: uuid.UUID | None = None
    orderType: str | None = None  # MARKET
    side: str | None = None
    message: str | None = None
    marketOrderData: MarketOrderData | None = None
    executionData: ExecutionData | None = None


class Transaction(Entity, kw_only=True):
    transactionId: uuid.UUID
    customerId: uuid.UUID
    transactionType: str
    transactionStatus: str
    bookingDate: date | None = None
    valueDate: date | None = None


class Strategy(Entity, kw_only=True):
    strategyId: uuid.UUID
    status: str
    name: str | None = None
    code: str | None = None
    type: str | None = None


class Pagination(msgspec.Struct, kw_only=True):
    cursor: str | None = None
    limit: int | None = None


class Page(msgspec.Struct, kw_only=True):
    """The documented "Objects" wrapper: `{data: [...], pagination: {cursor, limit}}`."""

    data: list[msgspec.Raw]
    pagination: Pagination = msgspec.field(default_factory=Pagination)
