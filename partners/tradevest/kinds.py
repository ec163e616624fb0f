"""Tradevest's entity kinds: GET path, status field, lifecycle, staleness."""

from __future__ import annotations

from functools import partial

from partnersync.kinds import Kind
from schemas.tradevest import entities as tv
from schemas.tradevest import lifecycles as lc
from schemas.tradevest.events import EVENT_TYPES
from schemas.tradevest.transfers import TRANSFER_LIFECYCLE, Transfer

# Tradevest purges a RECEIVED or INVALID entity (its GET answers 404 afterwards); INVALID
# and REJECTED are its refusals (`command submit --wait` exits 1)
TradevestKind = partial(
    Kind, "tradevest", purgeable=frozenset({"RECEIVED", "INVALID"}),
    failed=frozenset({"INVALID", "REJECTED"}),
)  # fmt: skip

_FETCHED = (
    TradevestKind("natural-person", lc.NATURAL_PERSON, tv.NaturalPerson,
         "/entities/natural-persons/{id}", status_field="naturalPersonStatus"),
    TradevestKind("legal-entity", lc.LEGAL_ENTITY, tv.LegalEntity,
         "/entities/legal-entities/{id}"),  # [inferred] GET by id
    TradevestKind("legal-representative", lc.LEGAL_ENTITY, tv.LegalRepresentative,
         "/entities/legal-representatives/{id}"),  # [inferred] GET by id
    TradevestKind("identification-verification", lc.IDENTIFICATION_VERIFICATION,
         tv.IdentificationVerification, "/entities/identification-verifications/{id}",
         acting_for="naturalPersonId"),
    TradevestKind("customer", lc.CUSTOMER, tv.Customer, "/roles/customers/{id}",
         status_field="customerStatus"),
    TradevestKind("customer-product", lc.CUSTOMER_PRODUCT, tv.CustomerProduct,
         "/products/{id}"),  # [inferred] GET by id (PATCH /products/{id} is documented)
    TradevestKind("document", lc.DOCUMENT, tv.Document, "/v2/documents/{id}"),
    TradevestKind("onboarding", lc.ONBOARDING, tv.Onboarding, "/onboardings/{id}"),
    TradevestKind("offboarding", lc.OFFBOARDING, tv.Offboarding, "/entities/offboardings/{id}"),
    TradevestKind("transfer", TRANSFER_LIFECYCLE, Transfer, "/transfers/{id}",
         status_field="transferStatus", envelope="transfer", stale_after_s=120.0),
    TradevestKind("traditional-order", lc.TRADITIONAL_ORDER, tv.TraditionalOrder,
         "/trading/order/{id}", stale_after_s=120.0),
    TradevestKind("digital-order", lc.DIGITAL_ORDER, tv.DigitalOrder,
         "/digital/orders/{id}", stale_after_s=120.0),
    # a booked transaction changes only by a storno (reference §4.11 shows MODIFIED; the
    # lifecycle's BOOKED → MODIFIED | CANCELED is inferred); it rests BOOKED or MODIFIED [inferred]
    TradevestKind("transaction", lc.TRANSACTION, tv.Transaction, "/transactions/{id}",
         status_field="transactionStatus", purgeable=frozenset(),
         resting=frozenset({"BOOKED", "MODIFIED"})),
    TradevestKind("strategy", lc.STRATEGY, tv.Strategy, "/strategies/{id}"),  # [inferred]
)  # fmt: skip


# Event types whose kind has no GET: mirrored from the notifications themselves.
_fetched = {k.kind for k in _FETCHED}
KINDS: tuple[Kind, ...] = _FETCHED + tuple(
    TradevestKind(kind, lc.UNORDERED)
    for kind in dict.fromkeys(e.kind for e in EVENT_TYPES.values() if e.kind)
    if kind not in _fetched
)
