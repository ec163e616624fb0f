"""Partner webhook notification bodies (Tradevest → partner), reference §3.

A notification says *which* entity changed; partnersync re-fetches *what* it is now.
`status` and `modifiedOn` are absent on a rejected update (VALIDATION_ERROR).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

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


class TransferNotification(Notification, kw_only=True, omit_defaults=True):
    transferId: uuid.UUID
