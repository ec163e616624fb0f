"""An entity kind: where its partner serves it, how to read its status, its lifecycle.

Each partner package declares its kinds (partners/<name>/kinds.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from schemas.lifecycle import Lifecycle, Observation

_envelope = msgspec.json.Decoder(dict[str, msgspec.Raw])


@dataclass(frozen=True)
class Kind:
    partner: str
    kind: str
    lifecycle: Lifecycle
    struct: type[Any] | None = None  # None: mirrored from its notifications alone
    path: str | None = None  # GET path, `{id}` replaced by the entity id
    status_field: str = "status"
    envelope: str | None = None  # GET wraps the entity in {envelope: {...}}
    # the field (of its notification, else of the stored entity) naming whom a GET acts for,
    # which the partner's client sends as its header (PartnerClient.headers)
    acting_for: str | None = None
    stale_after_s: float = 300.0  # a non-terminal entity unchanged this long is re-fetched
    # statuses after which the partner purges the entity (its GET answers 404); a final one
    # a notification carries is what a 404 then means (Tradevest's INVALID)
    purgeable: frozenset[str] = frozenset()
    # Polled kinds (no webhooks): next GET this many seconds after one that found the entity
    # in a non-terminal state, given the seconds since partnersync first saw it and the entity.
    poll: Callable[[float, Any], float] | None = None
    attention: frozenset[str] = frozenset()  # statuses that need a human
    # statuses an entity rests in for good though more could follow (a BOOKED transaction
    # may yet be cancelled): retention evicts it PARTNERSYNC_RESTING_DAYS after its last
    # change, like a final one; its tombstone judges what comes later
    resting: frozenset[str] = frozenset()
    # terminal statuses meaning the partner did not do it (`command submit --wait` exits 1)
    failed: frozenset[str] = frozenset()
    id_name: str = "partner id"  # what the partner calls the id (SignUpId, TransactionId)
    decoder: msgspec.json.Decoder | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.struct is not None:
            object.__setattr__(self, "decoder", msgspec.json.Decoder(self.struct))

    @property
    def fetched(self) -> bool:
        return self.path is not None

    def decode(self, content: bytes) -> tuple[Any, msgspec.Raw]:
        """The typed entity and its raw JSON (kept whole in the store)."""
        assert self.decoder is not None
        raw = _envelope.decode(content)[self.envelope] if self.envelope else msgspec.Raw(content)
        return self.decoder.decode(raw), raw

    def observe(self, entity: Any) -> Observation:
        status = getattr(entity, self.status_field, None)
        if status is None and self.status_field != "status":
            status = getattr(entity, "status", None)
        return Observation(status or "UNKNOWN", entity.modifiedOn)
