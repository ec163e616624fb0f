"""Create bodies of Tradevest's POST endpoints (reference §4), validated before sending.

Every documented field is modelled, and unknown fields are refused (by name, with the
nearest known one: schemas/strict.py), so nothing a caller gives is dropped on the way.
A create Tradevest deduplicates by `externalId` (`Created`) takes the caller's own as given;
without one, partnersync derives it from the command's intent (partnersync/commands.py). [inferred] marks shapes and types
the public docs did not show; those fields pass through as given.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from schemas.sensitive import Sensitive

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
PersonalName = Annotated[str, msgspec.Meta(min_length=1, max_length=255), Sensitive]
Country = Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")]


class Body(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """A body partnersync sends: the documented fields, nothing else."""


class Created(Body, kw_only=True):
    """A create Tradevest deduplicates by externalId: "lets the partner supply its own id",
    min length 1, unique and never reused, even after INVALID (tradevest-api.md §4, §5; the
    255 bound is inferred). Without one, partnersync derives it from the intent."""

    externalId: Name | None = None


def _positive(value: Decimal, field: str, step: str) -> None:
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{field} must be greater than 0")
    if value != value.quantize(Decimal(step)):
        raise ValueError(f"{field} must be a multiple of {step}")


class Address(Body, kw_only=True):
    street: PersonalName
    streetNumber: Annotated[str, Sensitive] | None = None
    city: PersonalName
    zip: Annotated[str, Sensitive]
    country: Country
    additionalInfo: Annotated[str, Sensitive] | None = None
    state: str | None = None  # required for a Canadian address [F-m]


class Nationality(Body, kw_only=True):
    countryCode: Country
    nationalIdentifier: Annotated[str, Sensitive] | None = None
    nationalIdentifierType: str | None = None  # enum not published


class NaceSector(Body, kw_only=True):
    section: str
    code: str | None = None  # legal entities
    description: str | None = None


class Contact(Body, kw_only=True):
    phone: Annotated[str, Sensitive] | None = None
    email: Annotated[str, Sensitive] | None = None
    fax: Annotated[str, Sensitive] | None = None
    website: str | None = None


class TaxDetail(Body, kw_only=True):
    taxId: Annotated[str, Sensitive] | None = None  # may be omitted when taxResidency is DE
    taxResidency: Country
    noTinConfirmation: bool | None = None


class NaturalPersonData(Created, kw_only=True):
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
    correspondenceAddress: Address | None = None
    taxDetails: list[TaxDetail] = []
    maritalStatus: str | None = None  # enum not published
    nationalities: list[Nationality] = []
    profession: str | None = None
    professionGroup: str | None = None
    naceSectors: list[NaceSector] = []
    contact: Contact | None = None
    # [inferred] types not published (amounts or ranges): passed through as given
    annualIncomeNet: Annotated[Any, Sensitive] = None
    sourceOfIncome: list[Any] = []
    availableAssets: Annotated[Any, Sensitive] = None
    originOfAssets: list[Any] = []


class LegalRepresentativeData(Body, kw_only=True):
    """POST /entities/{legalEntityId}/legal-representatives (tradevest-api.md §4.2): the
    required fields are documented, no externalId."""

    legalEntityId: uuid.UUID  # path parameter
    firstName: PersonalName
    lastName: PersonalName
    birthDay: Annotated[date, Sensitive]
    birthPlace: PersonalName
    birthCountry: Country
    isUsNationality: bool
    function: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]  # MANAGING_DIRECTOR…
    soleSignatureAuthorized: bool
    fatcaControllingPerson: bool


class IdentificationVerificationData(Body, kw_only=True):
    """POST /entities/identification-verifications (tradevest-api.md §4.3): no externalId."""

    naturalPersonId: uuid.UUID
    externalVerifier: Literal["WEB_ID"]
    identificationType: Literal["VIDEO_IDENT"]
    redirectUrl: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)] | None = None


class LegalEntityData(Created, kw_only=True):
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
    registerCourtZipCode: str | None = None
    registeredOn: date | None = None
    purpose: str | None = None
    searchId: uuid.UUID | None = None
    isListed: bool | None = None
    listedAt: str | None = None
    # [inferred] types not published: passed through as given
    averageProfit: Any = None
    averageRevenue: Any = None
    liquidAssets: Any = None
    lastAnnualFinancialStatement: Any = None
    naceSectors: list[NaceSector] = []
    mainAddress: Address | None = None
    correspondenceAddress: Address | None = None
    invoiceAddress: Address | None = None


class RefAccount(Body, kw_only=True):
    iban: Annotated[
        str, msgspec.Meta(pattern="^[A-Z]{2}[0-9A-Z]{14,31}$", max_length=33), Sensitive
    ]
    ownerName: PersonalName
    bankName: Name | None = None
    bic: Annotated[str, msgspec.Meta(min_length=8, max_length=11)] | None = None
    type: Literal["PRIMARY", "OTHER"] | None = None


class CustomerData(Body, kw_only=True):
    entityId: uuid.UUID
    entityType: Literal["NATURAL_PERSON", "LEGAL_ENTITY", "JOINT_PERSON"]
    refAccounts: list[RefAccount] = []
    labels: Annotated[list[str], msgspec.Meta(max_length=16)] = []


class CustomerProductData(Body, kw_only=True):
    customerId: uuid.UUID  # path parameter of POST /customers/{customerId}/products
    productCode: Literal["WALLET", "BALANCE_ACCOUNT", "DEPOSITORY_ACCOUNT", "CURRENCY_WALLET"]


class OnboardingData(Body, kw_only=True):
    entityType: Literal["CUSTOMER", "PROXY", "BENEFICIAL_OWNER"]
    entityId: uuid.UUID


class OffboardingData(Body, kw_only=True):
    entityType: Literal["CUSTOMER", "NATURAL_PERSON", "LEGAL_ENTITY"]
    entityId: uuid.UUID
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class DocumentData(Created, kw_only=True):
    """[inferred] JSON upload with base64 content (the upload encoding was not published)."""

    resourceType: Literal[
        "NATURAL_PERSON", "LEGAL_ENTITY", "PARTNER_USER", "CUSTOMER", "PROXY", "JOINT_PERSON"
    ]
    resourceId: uuid.UUID
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    name: Name
    content: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000_000), Sensitive]  # base64
    description: Name | None = None


class TransferData(Created, kw_only=True):
    """Outgoing SEPA transfer [inferred: see schemas/tradevest/transfers.py]."""

    customerProductId: uuid.UUID
    amount: Decimal
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=140)]
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")] = "EUR"

    def __post_init__(self) -> None:
        _positive(self.amount, "amount", "0.01")


class TraditionalOrderData(Created, kw_only=True):
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
    # [I] tradevest-api.md §4.9: the create body probably mirrors GET Order's fields; types
    # unpublished, so passed through as given (exAnteId: from `POST /trading/ex-ante`)
    exAnteId: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    expiryDate: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    asset_experience_fit: Any = None

    def __post_init__(self) -> None:
        _positive(self.quantity, "quantity", "1")
        if self.orderType == "limit" and self.limitPrice is None:
            raise ValueError("limitPrice is required for a limit order")
        if self.orderType == "stop" and self.stopPrice is None:
            raise ValueError("stopPrice is required for a stop order")


class ExAnteRequest(Body, kw_only=True):
    """POST /trading/ex-ante (tradevest-api.md §4.9): the costs of an order before it is
    placed; its exAnteId goes on the order."""

    depositoryCustomerProductId: uuid.UUID
    cashCustomerProductId: uuid.UUID
    tradeSide: Literal["BUY", "SELL"]
    quantityType: Literal["UNIT"]
    exchangeCode: Literal["TGAT", "XFRA"]
    orderType: Literal["MARKET", "LIMIT", "STOP"]
    isin: Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}[A-Z0-9]{10}$")]
    quantity: Decimal
    price: Decimal | None = None

    def __post_init__(self) -> None:
        _positive(self.quantity, "quantity", "1")
        if self.price is not None:
            _positive(self.price, "price", "0.001")
        elif self.orderType != "MARKET":
            raise ValueError("price is required for a limit or stop order")


class IncomingTestTransfer(Body, kw_only=True):
    """POST /transfers-test/incoming-transfer (tradevest-api.md §4.8): a test
    environment's simulated incoming payment; 202."""

    customerProductId: uuid.UUID
    amount: Decimal
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=140)]

    def __post_init__(self) -> None:
        _positive(self.amount, "amount", "0.01")


class TraditionalOrderModify(Body, kw_only=True):
    """PATCH /trading/order/{orderId} (tradevest-api.md §4.9): what changes; 202."""

    orderId: uuid.UUID  # path parameter
    quantityType: Literal["UNIT"] | None = None
    quantity: Decimal | None = None
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")] | None = None
    orderType: Literal["MARKET", "LIMIT", "STOP"] | None = None
    limitPrice: Decimal | None = None
    stopPrice: Decimal | None = None
    expiryDate: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None

    def __post_init__(self) -> None:
        changes = (self.quantityType, self.quantity, self.currency, self.orderType,
                   self.limitPrice, self.stopPrice, self.expiryDate)  # fmt: skip
        if all(c is None for c in changes):
            raise ValueError("nothing to modify: give at least one of the order's fields")
        if self.quantity is not None:
            _positive(self.quantity, "quantity", "1")


class TraditionalOrderCancel(Body, kw_only=True):
    """DELETE /trading/order/{orderId} (tradevest-api.md §4.9): 202, or 200 {modificationId}."""

    orderId: uuid.UUID  # path parameter


class CustomerProductClose(Body, kw_only=True, omit_defaults=False):
    """PATCH /products/{customerProductId} with CustomerProductUpdate `{status: CLOSED}`
    (tradevest-api.md §4.5); the status is the only value the enum has, so it is implied."""

    customerProductId: uuid.UUID  # path parameter
    status: Literal["CLOSED"] = "CLOSED"


class DocumentSign(Body, kw_only=True):
    """POST /v2/documents/sign (tradevest-api.md §4.6): 202. The privacy policy is signed
    without customerId."""

    partnerDocumentId: uuid.UUID
    naturalPersonId: uuid.UUID
    customerId: uuid.UUID | None = None


class DigitalOrderData(Created, kw_only=True):
    cryptoSymbol: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    tradeSide: Literal["BUY", "SELL"]
    quantityType: Literal["UNIT", "AMOUNT"]
    quantity: Decimal
    walletCustomerProductId: uuid.UUID
    cashCustomerProductId: uuid.UUID

    def __post_init__(self) -> None:
        _positive(self.quantity, "quantity", "0.00000001")
