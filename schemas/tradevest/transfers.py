"""Transfers: GET /transfers/{id} (wrapped in {"transfer": …}), POST /transfers, lifecycle.

Reference §4.8: the create body was not retrievable from the public docs; the shape below
follows the documented test-transfer body plus the documented pattern (externalId,
Requestor-ID) [inferred].
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import msgspec

from schemas.lifecycle import Lifecycle


class Transfer(msgspec.Struct, kw_only=True, omit_defaults=True):
    transferId: uuid.UUID
    transferStatus: str  # open: TRANSFER_LIFECYCLE lists the documented ones
    createdOn: datetime | None = None
    modifiedOn: datetime | None = None
    customerId: uuid.UUID | None = None
    customerProductId: uuid.UUID | None = None
    amount: Decimal | None = None
    currency: str | None = None
    reference: str | None = None
    externalId: str | None = None
    rejectReason: str | None = None


class TransferEnvelope(msgspec.Struct):
    transfer: Transfer


class CreateTransfer(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Outgoing SEPA transfer [inferred shape, see module docstring]."""

    customerProductId: uuid.UUID
    amount: Decimal  # > 0, at most 2 decimals (checked below: float multiple_of is inexact)
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=140)]
    externalId: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")] = "EUR"

    def __post_init__(self) -> None:
        if not self.amount.is_finite() or self.amount <= 0:
            raise ValueError("amount must be greater than 0")
        if self.amount != self.amount.quantize(Decimal("0.01")):
            raise ValueError("amount must have at most 2 decimals")


class CreateTransferResult(msgspec.Struct):
    transferId: uuid.UUID


# Documented transfer status codes: RECEIVED → INVALID | PENDING → PROCESSED | REJECTED.
TRANSFER_LIFECYCLE = Lifecycle(
    "RECEIVED",
    {
        "RECEIVED": ("INVALID", "PENDING"),
        "PENDING": ("PROCESSED", "REJECTED"),
    },
)
