"""Tradevest's list endpoints for `partnersync backfill` (partnersync/backfill.py), parents
before the listings that walk them. Cursor-paged lists resume at their cursor; a listing
per parent resumes at the parent it reached.

Not listed: documents and onboardings (their lists need a resource or entity and type for
each), identification verifications (their GET needs the natural person's Requestor-ID,
which a bare id does not carry); they still arrive by webhook and recovery.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from partners.tradevest.client import TradevestClient
from partnersync.backfill import Listing, Pages

_item = msgspec.json.Decoder(dict[str, Any])
_LIMIT = 100


def paged(path: str, id_field: str) -> Pages:
    """A cursor-paged list (`{data, pagination: {cursor}}`), from `token` on."""

    async def pages(
        client: TradevestClient, parents: Sequence[str], token: str | None
    ) -> AsyncIterator[tuple[list[str], str | None]]:
        cursor = token
        while True:
            ids, cursor = await _page(client, path, id_field, cursor)
            yield ids, cursor
            if not cursor or not ids:
                return

    return pages


def per_parent(path: str, id_field: str, *, plain: bool = False) -> Pages:
    """A list per parent id (`{id}` in `path`); the token is how many parents are done."""

    async def pages(
        client: TradevestClient, parents: Sequence[str], token: str | None
    ) -> AsyncIterator[tuple[list[str], str | None]]:
        for done, parent in enumerate(parents[int(token or 0) :], start=int(token or 0) + 1):
            url = path.format(id=parent)
            ids: list[str] = []
            if plain:  # a plain array
                listed = msgspec.json.decode(await client.get(url), type=list[dict[str, Any]])
                ids = [str(item[id_field]) for item in listed]
            else:
                cursor: str | None = None
                while True:
                    got, cursor = await _page(client, url, id_field, cursor)
                    ids += got
                    if not cursor or not got:
                        break
            yield ids, (str(done) if done < len(parents) else None)

    return pages


async def _page(
    client: TradevestClient, path: str, id_field: str, cursor: str | None
) -> tuple[list[str], str | None]:
    query: dict[str, Any] = {"limit": _LIMIT, **({"cursor": cursor} if cursor else {})}
    raw = msgspec.json.decode(await client.get(path, **query), type=dict[str, Any])
    ids = [str(item[id_field]) for item in raw.get("data") or []]
    return ids, (raw.get("pagination") or {}).get("cursor")


LISTINGS: tuple[Listing, ...] = (
    Listing("natural-person", "natural-persons",
            paged("/entities/natural-persons", "naturalPersonId")),
    Listing("legal-entity", "legal-entities", paged("/entities/legal-entities", "legalEntityId")),
    Listing("legal-representative", "legal-representatives",
            per_parent("/entities/{id}/legal-representatives", "legalRepresentativeId"),
            parent="legal-entity"),
    Listing("customer", "customers", paged("/roles/customers", "customerId")),
    Listing("customer-product", "customer-products",
            per_parent("/customers/{id}/products", "customerProductId", plain=True),
            parent="customer"),
    Listing("transfer", "transfers", paged("/transfers", "transferId")),  # [inferred] list
    Listing("traditional-order", "traditional-orders",  # [inferred] list, per product
            per_parent("/products/{id}/trading/orders", "orderId"), parent="customer-product"),
    Listing("digital-order", "digital-orders",
            per_parent("/products/{id}/digital/orders", "orderId"), parent="customer-product"),
    Listing("transaction", "transactions",
            per_parent("/customers/{id}/transactions", "transactionId"), parent="customer"),
    Listing("strategy", "strategies", paged("/strategies", "strategyId")),
)  # fmt: skip
