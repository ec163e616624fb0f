"""Tradevest event types: route name, notification Struct, and the entities it names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from schemas.tradevest.notifications import Notification, TransferNotification

PARTNER = "tradevest"


@dataclass(frozen=True)
class EventType:
    name: str  # EventTypeEnum value, e.g. TRANSFER_NOTIFICATION
    kind: str  # entity kind in partnersync's keys, e.g. transfer
    notification: type[Notification]
    entity_ids: Callable[[Notification], list[str]]
    decoder: msgspec.json.Decoder

    @property
    def path(self) -> str:
        """The route's last segment: the EventTypeEnum value in kebab case."""
        return self.name.lower().replace("_", "-")


def _event(name: str, kind: str, notification: type[Notification], id_field: str) -> EventType:
    return EventType(
        name=name,
        kind=kind,
        notification=notification,
        entity_ids=lambda n: [str(getattr(n, id_field))],
        decoder=msgspec.json.Decoder(notification),
    )


EVENT_TYPES: dict[str, EventType] = {
    e.path: e
    for e in (_event("TRANSFER_NOTIFICATION", "transfer", TransferNotification, "transferId"),)
}
