"""Partner webhook notification bodies (Tradevest → partner), reference §3.

A notification says *which* entity changed; partnersync re-fetches *what* it is now.
`status` and `modifiedOn` are absent on a rejected update (VALIDATION_ERROR).

The docs show the body of customer, natural person, identification verification, labels
and transfer notifications; for the other event types the id field names are inferred from
the documented pattern (`<entity>Id`) — marked [inferred] in `events.py`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from schemas import store

# Open: accept values the docs do not list (CREATED, UPDATED, VALIDATION_ERROR today).
NotificationType = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Status = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class ValidationError(msgspec.Struct, kw_only=True, omit_defaults=True):
    errorType: Annotated[str, msgspec.Meta(max_length=255)]
    description: Annotated[str, msgspec.Meta(max_length=4096)] | None = None


class Notification(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Fields every Tradevest notification carries."""

    notificationType: NotificationType
    status: Status | None = None
    modifiedOn: datetime | None = None
    validationError: ValidationError | None = None

    @property
    def is_validation_error(self) -> bool:
        return self.notificationType == "VALIDATION_ERROR"

    # the engine's Note (partnersync/partner.py)
    @property
    def change(self) -> str:
        return self.notificationType

    @property
    def refused(self) -> bool:
        return self.is_validation_error

    @property
    def refusal(self) -> store.Refusal | None:
        ve = self.validationError
        return store.Refusal(code=ve.errorType, description=ve.description) if ve else None


class TransferNotification(Notification, kw_only=True, omit_defaults=True):
    transferId: uuid.UUID


class IdentificationVerificationNotification(Notification, kw_only=True, omit_defaults=True):
    identificationVerificationId: uuid.UUID
    naturalPersonId: uuid.UUID | None = None


class LabelsUpdateNotification(Notification, kw_only=True, omit_defaults=True):
    """No status, no modifiedOn: the customers whose labels changed."""

    updatedCustomers: list[uuid.UUID] = []


def notification_struct(name: str, id_field: str, *, required: bool) -> type[Notification]:
    """`<Name>Notification` with its entity id field (required when documented)."""
    field: tuple[str, Any] | tuple[str, Any, Any] = (
        (id_field, uuid.UUID) if required else (id_field, uuid.UUID | None, None)
    )
    struct = msgspec.defstruct(
        name, [field], bases=(Notification,), kw_only=True, omit_defaults=True, module=__name__
    )
    assert issubclass(struct, Notification)
    return struct
