"""Per entity kind: where its partner serves it, how to read its status, its lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from schemas.lifecycle import Lifecycle, Observation
from schemas.saxo.cash_transfers import CASH_TRANSFER_LIFECYCLE, TransferResult
from schemas.saxo.signups import SIGNUP_LIFECYCLE, SignUpStatusResponse
from schemas.tradevest import entities as tv
from schemas.tradevest import lifecycles as lc
from schemas.tradevest.events import EVENT_TYPES
from schemas.tradevest.transfers import TRANSFER_LIFECYCLE, Transfer

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
    requestor: str | None = None  # field naming the Requestor-ID the GET requires
    stale_after_s: float = 300.0  # a non-terminal entity unchanged this long is re-fetched
    purgeable: frozenset[str] = frozenset({"RECEIVED", "INVALID"})
    # Polled kinds (no webhooks): next GET this many seconds after one that found the entity
    # in a non-terminal state, given the seconds since partnersync first saw it and the entity.
    poll: Callable[[float, Any], float] | None = None
    attention: frozenset[str] = frozenset()  # statuses that need a human
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

    @property
    def client(self) -> str:
        return self.partner

    def observe(self, entity: Any) -> Observation:
        status = getattr(entity, self.status_field, None)
        if status is None and self.status_field != "status":
            status = getattr(entity, "status", None)
        return Observation(status or "UNKNOWN", entity.modifiedOn)


_TRADEVEST = (
    Kind("tradevest", "natural-person", lc.NATURAL_PERSON, tv.NaturalPerson,
         "/entities/natural-persons/{id}", status_field="naturalPersonStatus"),
    Kind("tradevest", "legal-entity", lc.LEGAL_ENTITY, tv.LegalEntity,
         "/entities/legal-entities/{id}"),  # [inferred] GET by id
    Kind("tradevest", "legal-representative", lc.LEGAL_ENTITY, tv.LegalRepresentative,
         "/entities/legal-representatives/{id}"),  # [inferred] GET by id
    Kind("tradevest", "identification-verification", lc.IDENTIFICATION_VERIFICATION,
         tv.IdentificationVerification, "/entities/identification-verifications/{id}",
         requestor="naturalPersonId"),
    Kind("tradevest", "customer", lc.CUSTOMER, tv.Customer, "/roles/customers/{id}",
         status_field="customerStatus"),
    Kind("tradevest", "customer-product", lc.CUSTOMER_PRODUCT, tv.CustomerProduct,
         "/products/{id}"),  # [inferred] GET by id (PATCH /products/{id} is documented)
    Kind("tradevest", "document", lc.DOCUMENT, tv.Document, "/v2/documents/{id}"),
    Kind("tradevest", "onboarding", lc.ONBOARDING, tv.Onboarding, "/onboardings/{id}",
         purgeable=frozenset({"RECEIVED", "INVALID"})),
    Kind("tradevest", "offboarding", lc.OFFBOARDING, tv.Offboarding, "/entities/offboardings/{id}"),
    Kind("tradevest", "transfer", TRANSFER_LIFECYCLE, Transfer, "/transfers/{id}",
         status_field="transferStatus", envelope="transfer", stale_after_s=120.0),
    Kind("tradevest", "traditional-order", lc.TRADITIONAL_ORDER, tv.TraditionalOrder,
         "/trading/order/{id}", stale_after_s=120.0),
    Kind("tradevest", "digital-order", lc.DIGITAL_ORDER, tv.DigitalOrder,
         "/digital/orders/{id}", stale_after_s=120.0),
    Kind("tradevest", "transaction", lc.TRANSACTION, tv.Transaction, "/transactions/{id}",
         status_field="transactionStatus", purgeable=frozenset()),
    Kind("tradevest", "strategy", lc.STRATEGY, tv.Strategy, "/strategies/{id}"),  # [inferred]
)  # fmt: skip


def _fast_then_slower(age_s: float, entity: Any) -> float:
    """Cash transfers usually settle within a second: start at 0.5 s, back off to 60 s."""
    return min(60.0, max(0.5, age_s / 2))


def _signup_poll(age_s: float, entity: Any) -> float:
    """Onboarding takes minutes to days: back off to 5 minutes; manual handling is slow,
    so look every 15 minutes then."""
    if getattr(entity, "OnboardingSubState", None) == "ManualHandling":
        return 900.0
    return min(300.0, max(1.0, age_s / 4))


_SAXO = (
    Kind("saxo", "signup", SIGNUP_LIFECYCLE, SignUpStatusResponse, "/cm/v1/signups/status/{id}",
         status_field="OnboardingState", purgeable=frozenset(), poll=_signup_poll,
         attention=frozenset({"Pending", "Rejected"})),
    Kind("saxo", "cash-transfer", CASH_TRANSFER_LIFECYCLE, TransferResult,
         "/atr/v1/partner/cashtransfers/{id}", status_field="TransferStatus",
         purgeable=frozenset(), poll=_fast_then_slower, attention=frozenset({"Failed"})),
)  # fmt: skip

KINDS: dict[tuple[str, str], Kind] = {(k.partner, k.kind): k for k in (*_TRADEVEST, *_SAXO)}

# Event types whose kind has no GET: mirrored from the notifications themselves.
for _event in EVENT_TYPES.values():
    if _event.kind and ("tradevest", _event.kind) not in KINDS:
        KINDS[("tradevest", _event.kind)] = Kind("tradevest", _event.kind, lc.UNORDERED)
