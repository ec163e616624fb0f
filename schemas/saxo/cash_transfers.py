"""Partner cash transfers (atr.yaml, Services.AssetTransfers)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from schemas.lifecycle import Lifecycle

AccountKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MAX_EXTERNAL_REFERENCE = 50


class PartnerCashTransferRequest(
    msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """POST /atr/v1/partner/cashtransfers (additionalProperties: false: a field Saxo does
    not know is refused by name, never dropped)."""

    FromAccountKey: AccountKey
    ToAccountKey: AccountKey
    Amount: Decimal
    Currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
    FundingCheck: Literal["Enforce", "Ignore"] = "Enforce"
    Comment: Annotated[str, msgspec.Meta(max_length=250)] | None = None
    ValueDate: datetime | None = None
    # "your identifier for the transaction request", at most 50 characters
    # (saxo-partner-cash-transfers): when given, the command's idempotency key as given;
    # else partnersync derives one
    ExternalReference: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EXTERNAL_REFERENCE)] | None
    ) = None

    def __post_init__(self) -> None:
        if not self.Amount.is_finite() or self.Amount <= 0:
            raise ValueError("Amount must be greater than 0")


class PartnerCashTransferResponse(msgspec.Struct, kw_only=True):
    TransactionId: str
    FromAccountPositionId: str | None = None
    ToAccountPositionId: str | None = None


class TransferResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """GET /atr/v1/partner/cashtransfers/{TransactionId}: note FromAccount/ToAccount."""

    TransactionId: str
    TransferStatus: str  # Pending | Successful | Failed, kept open
    Amount: Decimal | None = None
    Currency: str | None = None
    Comment: str | None = None
    ExternalReference: str | None = None
    FromAccount: str | None = None
    ToAccount: str | None = None
    FromAccountPositionId: str | None = None
    ToAccountPositionId: str | None = None
    FundingCheck: str | None = None
    TransferRequestedOn: datetime | None = None
    ValueDate: datetime | None = None

    @property
    def value_date(self) -> date | None:
        """ValueDate, None where Saxo sends .NET's empty date ("0001-01-01T00:00:00Z", the
        value in atr.yaml's own TransferResult example)."""
        if self.ValueDate is None or self.ValueDate.year == 1:
            return None
        return self.ValueDate.date()

    @property
    def modifiedOn(self) -> datetime | None:
        return None  # Saxo gives no modification time: the lifecycle orders the states

    @property
    def externalId(self) -> str | None:
        return self.ExternalReference


# Failed is terminal and needs a human (the seed: contact Saxo).
CASH_TRANSFER_LIFECYCLE = Lifecycle("Pending", {"Pending": ("Successful", "Failed")})
