"""Tradevest's notifications as the engine reads them from the inbox, and their intake."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import redis

from partners.tradevest import keys as tradevest_keys
from partnersync import keys
from partnersync.config import Settings
from partnersync.kinds import Kind
from schemas.tradevest.events import BY_NAME
from schemas.tradevest.notifications import Notification


def read(event_type: str | None, body: bytes | None) -> Notification | None:
    """An archived delivery's notification (None for an unknown type or unreadable body)."""
    event = BY_NAME.get(event_type) if event_type else None
    if event is None or body is None:
        return None
    try:
        notification = event.decoder.decode(body)
    except msgspec.DecodeError:
        return None  # archived bodies were validated at intake; be lenient
    return notification if isinstance(notification, Notification) else None


def index(
    write: redis.client.Pipeline, kind: Kind, key: str, entity: Any, settings: Settings
) -> None:
    """Customers whose transactions the sweeper lists (transactions have no webhook), with
    when one of their entities last changed (this worker's clock: a coarse activity window)."""
    if kind.kind == "customer":
        customer: Any = keys.split_entity_key(key)[2]
    else:
        customer = getattr(entity, "customerId", None)
    if customer:
        write.zadd(tradevest_keys.ACTIVITY, {str(customer): int(time.time() * 1000)})
