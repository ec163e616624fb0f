"""What partnersync stores per entity, and what it appends to the change stream."""

from __future__ import annotations

from datetime import datetime

import msgspec


class Refusal(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Why the partner refused an entity or an update, as it said it: its code and words."""

    code: str
    description: str | None = None


class Rejection(msgspec.Struct, kw_only=True):
    """A refused update (a refusal naming no status): state kept, reason recorded."""

    at: datetime
    deliveryId: str
    refusal: Refusal | None = None


class EntityRecord(msgspec.Struct, kw_only=True):
    key: str
    partner: str
    kind: str
    id: str
    status: str
    modifiedOn: datetime | None = None
    updatedAt: datetime
    createdAt: datetime | None = None  # when partnersync first stored it
    externalId: str | None = None
    knownStatus: bool = True
    purged: bool = False  # the partner answered 404 after RECEIVED/INVALID
    refusal: Refusal | None = None  # why the partner refused the entity
    rejections: list[Rejection] = []
    # The entity as the partner's GET returned it (JSON null until first fetched).
    data: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


class Transition(msgspec.Struct, kw_only=True, omit_defaults=True):
    key: str
    from_: str | None = msgspec.field(default=None, name="from")
    to: str
    modifiedOn: datetime | None = None
    at: datetime
    decision: str = "apply"
    source: list[str] = []  # delivery ids of the events that led to this reconcile
