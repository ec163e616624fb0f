"""Create bodies of Tradevest's POST endpoints (reference §4), validated before sending.

`externalId` is left out of the Structs a caller fills in: partnersync derives it from
the command's intent and adds it (see jobs/commands.py). [inferred] marks shapes the
public docs did not show.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from schemas.sensitive import Sensitive

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
PersonalName = Annotated[str, msgspec.Meta(min_length=1, max_length=255), Sensitive]
Country = Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")]


def _positive(value: Decimal, field: str, step: str) -> None:
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{field} must be greater than 0")
    if value != value.quantize(Decimal(step)):
        raise ValueError(f"{field} must be a multiple of {step}")


class Address(msgspec.Struct, kw_only=True, omit_defaults=True):
    street: PersonalName
    streetNumber: Annotated[str, Sensitive] | None = None
    city: PersonalName
    zip: Annotated[str, Sensitive]
    country: Country
    additionalInfo: Annotated[str, Sensitive] | None = None


class TaxDetail(msgspec.Struct, kw_only=True, omit_defaults=True):
    taxId: Annotated[str, Sensitive] | None = None  # may be omitted when taxResidency is DE
    taxResidency: Country
    noTinConfirmation: bool | None = None


class NaturalPersonData(msgspec.Struct, kw_only=True, omit_defaults=True):
    gender: Literal["MALE", "FEMALE", "DIVERSE"]
    firstName: Annotated[
        str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^\S+( \S+)*$"), Sensitive
    ]
    lastName: PersonalName
    birthDay: Annotated[date, Sensitive]
    birthPlace: PersonalName
    birthCountry: Country
    isUsNationality: bool
    title: Annotated[str, Sensitive] | None = None
    language: Annotated[str, msgspec.Meta(pattern="^[a-z]{2}$")] | None = None
    mainAddress: Address | None = None
    taxDetails: list[TaxDetail] = []


class LegalEntityData(msgspec.Struct, kw_only=True, omit_defaults=True):
    legalName: Name
    legalForm: str
    registerCountry: Country
    registerNumber: Name
    registerCourt: Name
    foundedOn: date
    taxNumber: Annotated[str, msgspec.Meta(min_length=1, max_length=255), Sensitive]
    legalEntityIdentifier: (
        Annotated[str, msgspec.Meta(pattern=r"^\d{4}[0]{2}[A-Z\d]{12}\d{2}$")] | None
    ) = None
    vatId: Annotated[str, msgspec.Meta(min_length=11, max_length=11)] | None = None
    mainAddress: Address | None = None


class RefAccount(msgspec.Struct, kw_only=True, omit_defaults=True):
    iban: Annotated[
        str, msgspec.Meta(pattern="^[A-Z]{2}[0-9A-Z]{14,31}$", max_length=33), Sensitive
    ]
    ownerName: PersonalName
    bankName: Name | None = None
    bic: Annotated[str, msgspec.Meta(min_length=8, max_length=11)] | None = None
    type: Literal["PRIMARY", "OTHER"] | None = None


class CustomerData(msgspec.Struct, kw_only=True, omit_defaults=True):
    entityId: uuid.UUID
    entityType: Literal["NATURAL_PERSON", "LEGAL_ENTITY", "JOINT_PERSON"]
    refAccounts: list[RefAccount] = []
    labels: Annotated[list[str], msgspec.Meta(max_length=16)] = []


class CustomerProductData(msgspec.Struct, kw_only=True, omit_defaults=True):
    customerId: uuid.UUID  # path parameter of POST /customers/{customerId}/products
    productCode: Literal["WALLET", "BALANCE_ACCOUNT", "DEPOSITORY_ACCOUNT", "CURRENCY_WALLET"]


class OnboardingData(msgspec.Struct, kw_only=True, omit_defaults=True):
    entityType: Literal["CUSTOMER", "PROXY", "BENEFICIAL_OWNER"]
    entityId: uuid.UUID


class OffboardingData(msgspec.Struct, kw_only=True, omit_defaults=True):
    entityType: Literal["CUSTOMER", "NATURAL_PERSON", "LEGAL_ENTITY"]
    entityId: uuid.UUID
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class DocumentData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """[inferred] JSON upload with base64 content (the upload encoding was not published)."""

    resourceType: Literal[
        "NATURAL_PERSON", "LEGAL_ENTITY", "PARTNER_USER", "CUSTOMER", "PROXY", "JOINT_PERSON"
    ]
    resourceId: uuid.UUID
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    name: Name
    content: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000_000), Sensitive]  # base64
    description: Name | None = None


class TransferData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Outgoing SEPA transfer [inferred: see schemas/tradevest/transfers.py]."""

    customerProductId: uuid.UUID
    amount: Decimal
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=140)]
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")] = "EUR"

    def __post_init__(self) -> None:
        _positive(self.amount, "amount", "0.01")


class TraditionalOrderData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """POST /trading/order/{orderType} [inferred beyond the first two fields]."""

    orderType: Literal["market", "limit", "stop"]  # path parameter
    depositoryCustomerProductId: uuid.UUID
    cashCustomerProductId: uuid.UUID
    tradeSide: Literal["BUY", "SELL"]
    isin: Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}[A-Z0-9]{10}$")]
    quantity: Decimal
    exchangeCode: Literal["TGAT", "XFRA"]
    quantityType: Literal["UNIT"] = "UNIT"
    limitPrice: Decimal | None = None
    stopPrice: Decimal | None = None

    def __post_init__(self) -> None:
        _positive(self.quantity, "quantity", "1")
        if self.orderType == "limit" and self.limitPrice is None:
            raise ValueError("limitPrice is required for a limit order")
        if self.orderType == "stop" and self.stopPrice is None:
            raise ValueError("stopPrice is required for a stop order")


class DigitalOrderData(msgspec.Struct, kw_only=True, omit_defaults=True):
    cryptoSymbol: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    tradeSide: Literal["BUY", "SELL"]
    quantityType: Literal["UNIT", "AMOUNT"]
    quantity: Decimal
    walletCustomerProductId: uuid.UUID
    cashCustomerProductId: uuid.UUID

    def __post_init__(self) -> None:
        _positive(self.quantity, "quantity", "0.00000001")
