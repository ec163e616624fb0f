"""Per entity kind: how to fetch it from its partner and read its status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jobs.tradevest import TradevestClient
from schemas.lifecycle import Lifecycle, Observation
from schemas.tradevest.transfers import TRANSFER_LIFECYCLE, Transfer


@dataclass(frozen=True)
class Clients:
    tradevest: TradevestClient


@dataclass(frozen=True)
class Kind:
    partner: str
    kind: str
    lifecycle: Lifecycle
    fetch: Callable[[Clients, str], Awaitable[Any]]
    observe: Callable[[Any], Observation]
    external_id: Callable[[Any], str | None]
    # Statuses in which the partner may purge the entity (a 404 then means "purged").
    purgeable: frozenset[str] = frozenset({"RECEIVED", "INVALID"})


def _transfer_observation(t: Transfer) -> Observation:
    return Observation(t.transferStatus, t.modifiedOn)


KINDS: dict[tuple[str, str], Kind] = {
    ("tradevest", "transfer"): Kind(
        partner="tradevest",
        kind="transfer",
        lifecycle=TRANSFER_LIFECYCLE,
        fetch=lambda c, id: c.tradevest.get_transfer(id),
        observe=_transfer_observation,
        external_id=lambda t: t.externalId,
    ),
}
