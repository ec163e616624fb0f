"""Tradevest's commands: every documented create, with the lookup that finds what an
earlier send may have booked (by externalId where the partner keeps one, else by scope)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec

from partners.tradevest.client import TradevestClient
from partnersync.commandkind import CommandKind, Lookup, body_fields
from schemas.commands import CommandRecord
from schemas.tradevest import commands as tvc

_item = msgspec.json.Decoder(dict[str, Any])


def by_external_id(path: str, id_field: str, *, filtered: bool = False, **params: str) -> Lookup:
    """The entities of a cursor-paged list endpoint whose externalId is the command's
    (`{field}` in path/params from the command). `filtered=True` only where the docs offer an
    externalId filter (digital orders); elsewhere the pages are read and matched here."""

    async def lookup(client: TradevestClient, record: CommandRecord) -> list[str]:
        values = {**body_fields(record), **record.pathParams}
        query: dict[str, Any] = {k: v.format(**values) for k, v in params.items()}
        if filtered:
            query["externalId"] = record.externalId
        found: list[str] = []
        async for raw in client.pages(path.format(**values), **query):
            item = _item.decode(raw)
            if item.get("externalId") == record.externalId:
                found.append(str(item[id_field]))
        return found

    return lookup


def listing(
    path: str, id_field: str, match: dict[str, str], *, paged: bool = False, **params: str
) -> Lookup:
    """Every entity of the command's scope: a list endpoint (a plain array, or cursor-paged
    `{data, pagination}` when `paged`), items matching `match`."""

    async def lookup(client: TradevestClient, record: CommandRecord) -> list[str]:
        values = {**body_fields(record), **record.pathParams}
        query: dict[str, Any] = {k: v.format(**values) for k, v in params.items()}
        if paged:
            items = [
                _item.decode(raw) async for raw in client.pages(path.format(**values), **query)
            ]
        else:
            items = msgspec.json.decode(
                await client.get(path.format(**values), **query), type=list[dict[str, Any]]
            )
        return [
            str(item[id_field])
            for item in items
            if all(str(item.get(k)) == v.format(**values) for k, v in match.items())
        ]

    return lookup


def effect_seen(path: str, status_field: str, effect: frozenset[str]) -> Lookup:
    """An action's effect at the partner: its target (GET `path`) in a status of `effect`."""

    async def lookup(client: TradevestClient, record: CommandRecord) -> list[str]:
        values = {**body_fields(record), **record.pathParams}
        item = _item.decode(await client.get(path.format(**values), acting_for=record.actingFor))
        target = path.format(**values).rsplit("/", 1)[-1]
        return [target] if item.get(status_field) in effect else []

    return lookup


async def no_effect_seen(client: TradevestClient, record: CommandRecord) -> list[str]:
    """An action whose effect no GET shows (a modification, a signature): after a lost
    answer it is sent again, which the partner takes as the same change."""
    return []


def _action(
    name: str,
    entity_kind: str,
    data: type,
    method: str,
    path: str,
    target: str | None,
    *,
    effect: frozenset[str] = frozenset(),
    lookup: Lookup = no_effect_seen,
    acting_for: str = "",
) -> CommandKind:
    """A command on what Tradevest already has; one at a time per target."""
    return CommandKind(
        name, _TV, entity_kind, data, path, "", lookup, acting_for=acting_for,
        external_id=None, method=method, creates=False, target=target, effect=effect,
        scope=(target,) if target else (),
    )  # fmt: skip


def since_snapshot(scope_listing: Lookup) -> Lookup:
    """What the scope holds now that it did not hold before the first send."""

    async def lookup(client: TradevestClient, record: CommandRecord) -> list[str]:
        before = set(record.snapshot or ())
        return [i for i in await scope_listing(client, record) if i not in before]

    return lookup


_TV = "tradevest"
# tradevest-api.md "Requestor-ID header": a uuid naming the entity acting, on these creates
REQUESTOR = "a Requestor-ID (the acting natural person's id)"
_SCOPED_DATA = {
    "legal-representative": tvc.LegalRepresentativeData,
    "identification-verification": tvc.IdentificationVerificationData,
    "customer": tvc.CustomerData,
    "customer-product": tvc.CustomerProductData,
    "onboarding": tvc.OnboardingData,
    "offboarding": tvc.OffboardingData,
}


def _scoped(name: str, path: str, id_field: str, scope_listing: Lookup, scope: tuple[str, ...]):
    return CommandKind(
        name, _TV, name, _SCOPED_DATA[name], path, id_field, since_snapshot(scope_listing),
        acting_for=REQUESTOR, external_id=None, scope=scope, snapshot=scope_listing,
    )  # fmt: skip


_COMMANDS: tuple[CommandKind, ...] = (
    CommandKind("natural-person", _TV, "natural-person", tvc.NaturalPersonData,
                "/entities/natural-persons", "naturalPersonId",
                by_external_id("/entities/natural-persons", "naturalPersonId")),
    CommandKind("legal-entity", _TV, "legal-entity", tvc.LegalEntityData,
                "/entities/legal-entities", "legalEntityId",
                by_external_id("/entities/legal-entities", "legalEntityId")),
    # Creates with no externalId in the docs: one at a time per scope, found afterwards as
    # what the scope's listing holds that it did not before the first send.
    # Legal representatives: listed on the create's path (§4.2).
    _scoped("legal-representative", "/entities/{legalEntityId}/legal-representatives",
            "legalRepresentativeId",
            listing("/entities/{legalEntityId}/legal-representatives", "legalRepresentativeId",
                    {}, paged=True),
            ("legalEntityId",)),
    # Identification verifications: the list takes no filter (§4.3): matched here
    _scoped("identification-verification", "/entities/identification-verifications",
            "identificationVerificationId",
            listing("/entities/identification-verifications", "identificationVerificationId",
                    {"naturalPersonId": "{naturalPersonId}"}, paged=True),
            ("naturalPersonId",)),
    # CustomerData: one customer create per entity at a time, found by the documented
    # entityId filter
    _scoped("customer", "/roles/customers", "customerId",
            listing("/roles/customers", "customerId", {"entityType": "{entityType}"},
                    paged=True, entityId="{entityId}"),
            ("entityId", "entityType")),
    _scoped("customer-product", "/customers/{customerId}/products", "customerProductId",
             listing("/customers/{customerId}/products", "customerProductId",
                     {"productCode": "{productCode}"}),
             ("customerId", "productCode")),
    _scoped("onboarding", "/onboardings", "onboardingId",
            listing("/onboardings", "onboardingId", {}, entityType="{entityType}",
                    entityId="{entityId}"),
            ("entityType", "entityId")),
    _scoped("offboarding", "/entities/offboardings", "offboardingId",
            listing("/entities/offboardings", "offboardingId", {},
                    offboardingEntityType="{entityType}", entityId="{entityId}"),
            ("entityType", "entityId")),
    CommandKind("document", _TV, "document", tvc.DocumentData, "/v2/documents", "documentId",
                by_external_id("/v2/documents", "documentId", resourceType="{resourceType}",
                               resourceId="{resourceId}")),
    CommandKind("transfer", _TV, "transfer", tvc.TransferData, "/transfers", "transferId",
                by_external_id("/transfers", "transferId", filtered=True)),  # [inferred] list + filter
    CommandKind("traditional-order", _TV, "traditional-order", tvc.TraditionalOrderData,
                "/trading/order/{orderType}", "orderId",
                # [inferred] list + filter, after the digital orders' documented one
                by_external_id("/products/{depositoryCustomerProductId}/trading/orders", "orderId",
                               filtered=True),
                acting_for=REQUESTOR),
    CommandKind("digital-order", _TV, "digital-order", tvc.DigitalOrderData,
                "/digital/orders/market", "orderId",
                by_external_id("/products/{walletCustomerProductId}/digital/orders", "orderId",
                               filtered=True),
                acting_for=REQUESTOR),
)  # fmt: skip

_CANCELED = frozenset({"CANCELED"})
_CLOSED = frozenset({"CLOSED"})
_ACTIONS: tuple[CommandKind, ...] = (
    _action("traditional-order-modify", "traditional-order", tvc.TraditionalOrderModify,
            "PATCH", "/trading/order/{orderId}", "orderId", acting_for=REQUESTOR),
    _action("traditional-order-cancel", "traditional-order", tvc.TraditionalOrderCancel,
            "DELETE", "/trading/order/{orderId}", "orderId", effect=_CANCELED,
            lookup=effect_seen("/trading/order/{orderId}", "status", _CANCELED),
            acting_for=REQUESTOR),
    _action("customer-product-close", "customer-product", tvc.CustomerProductClose,
            "PATCH", "/products/{customerProductId}", "customerProductId", effect=_CLOSED,
            lookup=effect_seen("/products/{customerProductId}", "status", _CLOSED)),
    _action("document-sign", "document", tvc.DocumentSign, "POST", "/v2/documents/sign", None),
)  # fmt: skip

# An externalId whose entity became INVALID is never accepted again (Tradevest refuses a
# reused externalId; an INVALID entity keeps its own)
COMMANDS: tuple[CommandKind, ...] = (
    *(replace(c, spent_by=frozenset({"INVALID"})) for c in _COMMANDS),
    *_ACTIONS,
)
