"""The one HTTP client for Saxo OpenAPI.

Authentication is a token provider (partners/saxo/auth.py): SAXO_TOKEN, the Authorization
Code grant's refresh tokens, or certificate-based authentication; a 401 asks it for another
token once (partnersync/client.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec

from partners.saxo.auth import StaticToken, TokenProvider
from partners.saxo.settings import SaxoSettings
from partnersync import client
from partnersync.client import PartnerClient
from partnersync.config import Settings
from partnersync.ratelimit import Limit, Limiter
from partnersync.ratelimit import whole as ratelimit_whole
from schemas.commands import PartnerRejection
from schemas.saxo.errors import ErrorEnvelope

PARTNER = "saxo"
_error_decoder = msgspec.json.Decoder(ErrorEnvelope)


def rejection(response: httpx.Response) -> PartnerRejection:
    """ErrorCode + Message + ModelState (per field) of an error answer (a 401 has an empty
    body)."""
    try:
        info = _error_decoder.decode(response.content).error()
    except msgspec.DecodeError:
        info = None
    status = response.status_code
    if info is None:
        return PartnerRejection(
            status=status, message=response.text[:200] or response.reason_phrase
        )
    details = [{"field": f, "errors": errs} for f, errs in info.ModelState.items()]
    return PartnerRejection(
        status=status, message=info.Message, errorCode=info.ErrorCode, details=details
    )


def raise_for(response: httpx.Response) -> None:
    """For Saxo calls made outside a SaxoClient (the synchronous signup calls)."""
    client.raise_for(response, rejection, PARTNER)


def service_group(method: str, path: str) -> str:
    """The service group a request counts against (the path's first segment: cm, atr, ens,
    hist): Saxo's Session limit is "per session per service group"."""
    return path.lstrip("/").split("/", 1)[0]


def limits(spec: str) -> tuple[Limit, ...]:
    """SAXO_RATE_LIMITS, `Dimension=requests/seconds,…` (config checks the form). Saxo's
    documented ones (developer.saxo rate-limiting): Session 120 a minute per session and
    service group, AppDay 10,000,000 a day per application. (SessionOrders, 1 order a
    second, counts orders, which partnersync does not place.)"""
    found = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        dimension, _, rate = part.partition("=")
        requests, _, seconds = rate.partition("/")
        scope = service_group if dimension == "Session" else ratelimit_whole
        found.append(Limit(dimension, int(requests), float(seconds), scope))
    return tuple(found)


class SaxoClient(PartnerClient):
    partner = PARTNER

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        tokens: TokenProvider | None = None,
        limiter: Limiter | None = None,
    ):
        super().__init__(SaxoSettings.of(settings).base_url, http, limiter)
        self.settings = settings
        self.tokens = tokens or StaticToken(settings)

    async def token(self, *, refresh: bool = False) -> str:
        return await (self.tokens.refresh() if refresh else self.tokens.token())

    def rejection(self, response: httpx.Response) -> PartnerRejection:
        return rejection(response)

    async def pages(self, path: str, **params: Any) -> AsyncIterator[Any]:
        """Every item of a `{Data, __next}` list, following `__next`."""
        page = msgspec.json.decode(await self.get(path, **params), type=dict[str, Any])
        while True:
            for item in page.get("Data", []):
                yield item
            nxt = page.get("__next")
            if not nxt:
                return
            # __next is an absolute or /openapi-rooted link: keep the path after /openapi
            rel = nxt.split("/openapi", 1)[-1]
            response = await self.request("GET", rel)
            self.raise_for(response)
            page = msgspec.json.decode(response.content, type=dict[str, Any])
