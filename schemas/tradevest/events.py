"""Tradevest's EventTypeEnum: per event type, the notification Struct, the entity kind it
names and how to find the entity ids in it. The route is the value in kebab case."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from schemas.dedupe import digest
from schemas.tradevest.notifications import (
    IdentificationVerificationNotification,
    LabelsUpdateNotification,
    TransferNotification,
    notification_struct,
)

PARTNER = "tradevest"


@dataclass(frozen=True)
class EventType:
    name: str  # EventTypeEnum value, e.g. TRANSFER_NOTIFICATION
    kind: str | None  # entity kind in partnersync's keys, e.g. transfer; None: no entity
    notification: type[Any]
    id_fields: tuple[str, ...] = ()  # fields holding entity ids (a list field fans out)
    inferred: bool = False  # body shape inferred from the documented pattern
    # Not in Tradevest's 24 EventTypeEnum values (WAWEX's docs add it): accepted when it
    # arrives, registered only when TRADEVEST_EXTRA_EVENT_TYPES names it.
    extra: bool = False
    decoder: msgspec.json.Decoder = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decoder", msgspec.json.Decoder(self.notification))

    @property
    def path(self) -> str:
        """The route's last segment: the EventTypeEnum value in kebab case."""
        return self.name.lower().replace("_", "-")

    def entity_ids(self, notification: Any) -> list[str]:
        """The entity ids the notification names, each once (a body naming one customer
        thousands of times is one entity to reconcile, not thousands)."""
        ids: list[str] = []
        for name in self.id_fields:
            value = getattr(notification, name, None)
            if isinstance(value, list):
                ids.extend(str(v) for v in value)
            elif value is not None:
                ids.append(str(value))
        return list(dict.fromkeys(ids))

    def dedupe_digest(self, notification: Any, ids: list[str]) -> str | None:
        """Tradevest sends no event id: a delivery is told apart by everything it says
        (its decoded Struct, encoded canonically, so field order and spacing do not count).

        Without a modifiedOn (labels updates, rejected updates) nothing tells a redelivery
        from the next change of the same entity: such a delivery is not deduplicated
        (None). A redelivery then costs one coalesced re-fetch; deduplicating would lose
        the second change."""
        if getattr(notification, "modifiedOn", None) is None:
            return None
        return digest(self.name, _canonical(notification).decode())


_canonical = msgspec.json.Encoder(order="sorted").encode


def _simple(
    name: str, kind: str, id_field: str, *, inferred: bool = False, extra: bool = False
) -> EventType:
    struct_name = "".join(w.capitalize() for w in name.lower().split("_"))
    return EventType(
        name=name,
        kind=kind,
        notification=notification_struct(struct_name, id_field, required=not inferred),
        id_fields=(id_field,),
        inferred=inferred,
        extra=extra,
    )


_ALL: tuple[EventType, ...] = (
    # documented bodies
    _simple("CUSTOMER_NOTIFICATION", "customer", "customerId"),
    _simple("NATURAL_PERSON_NOTIFICATION", "natural-person", "naturalPersonId"),
    EventType(
        "IDENTIFICATION_VERIFICATION_NOTIFICATION",
        "identification-verification",
        IdentificationVerificationNotification,
        ("identificationVerificationId",),
    ),
    EventType(
        "LABELS_UPDATE_NOTIFICATION", "customer", LabelsUpdateNotification, ("updatedCustomers",)
    ),
    EventType("TRANSFER_NOTIFICATION", "transfer", TransferNotification, ("transferId",)),
    # documented event types; id field names follow the documented `<entity>Id` pattern
    _simple("ONBOARDING_NOTIFICATION", "onboarding", "onboardingId"),
    _simple("DOCUMENT_NOTIFICATION", "document", "documentId"),
    _simple("CUSTOMER_PRODUCT_NOTIFICATION", "customer-product", "customerProductId"),
    _simple("DIGITAL_ASSET_ORDER_NOTIFICATION", "digital-order", "orderId"),
    _simple("TRADITIONAL_ASSET_ORDER_NOTIFICATION", "traditional-order", "orderId"),
    _simple("STRATEGY_NOTIFICATION", "strategy", "strategyId"),
    _simple("OFFBOARDING_NOTIFICATION", "offboarding", "offboardingId"),
    _simple("LEGAL_ENTITY_NOTIFICATION", "legal-entity", "legalEntityId"),
    _simple("LEGAL_REPRESENTATIVE_NOTIFICATION", "legal-representative", "legalRepresentativeId"),
    # kinds partnersync mirrors from the notification alone (no GET documented);
    # the id may be missing from a real body: then the delivery is archived and parked
    _simple(
        "PARTNER_DOCUMENT_NOTIFICATION", "partner-document", "partnerDocumentId", inferred=True
    ),
    _simple("LEGAL_ENTITY_SEARCH_NOTIFICATION", "legal-entity-search", "searchId", inferred=True),
    _simple("PROXY_NOTIFICATION", "proxy", "proxyId", inferred=True),
    _simple(
        "BENEFICIAL_OWNER_NOTIFICATION", "beneficial-owner", "beneficialOwnerId", inferred=True
    ),
    _simple("USER_NOTIFICATION", "user", "userId", inferred=True),
    _simple("PARTNER_NOTIFICATION", "partner", "partnerId", inferred=True),
    _simple("JOINT_PERSON_NOTIFICATION", "joint-person", "jointPersonId", inferred=True),
    _simple(
        "TAX_EXEMPTION_ORDER_NOTIFICATION",
        "tax-exemption-order",
        "taxExemptionOrderId",
        inferred=True,
    ),
    _simple(
        "CORPORATE_ACTION_NOTIFICATION", "corporate-action", "corporateActionId", inferred=True
    ),
    # WAWEX's two additions: not Tradevest's
    _simple(
        "SAVINGS_PLANS_NOTIFICATION", "savings-plan", "savingsPlanId", inferred=True, extra=True
    ),
    _simple(
        "TOKENIZED_ASSET_ORDER_NOTIFICATION",
        "tokenized-order",
        "orderId",
        inferred=True,
        extra=True,
    ),
    # prices, not an entity: archived and counted
    EventType("RE_TOKEN_PRICES", None, Any, inferred=True),
)

EVENT_TYPES: dict[str, EventType] = {e.path: e for e in _ALL}
BY_NAME: dict[str, EventType] = {e.name: e for e in _ALL}
DOCUMENTED: tuple[str, ...] = tuple(e.name for e in _ALL if not e.extra)  # Tradevest's 24


def to_register(extra: tuple[str, ...] = ()) -> list[EventType]:
    """Tradevest's documented event types, plus the extras asked for by name."""
    return [e for e in _ALL if not e.extra or e.name in extra]
