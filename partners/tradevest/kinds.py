"""Tradevest's entity kinds: GET path, status field, lifecycle, staleness."""

from __future__ import annotations

from partnersync.kinds import Kind
from schemas.tradevest import entities as tv
from schemas.tradevest import lifecycles as lc
from schemas.tradevest.events import EVENT_TYPES
from schemas.tradevest.transfers import TRANSFER_LIFECYCLE, Transfer

_FETCHED = (
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


# Event types whose kind has no GET: mirrored from the notifications themselves.
_fetched = {k.kind for k in _FETCHED}
KINDS: tuple[Kind, ...] = _FETCHED + tuple(
    Kind("tradevest", kind, lc.UNORDERED)
    for kind in dict.fromkeys(e.kind for e in EVENT_TYPES.values() if e.kind)
    if kind not in _fetched
)
