"""The one HTTP client for Tradevest's REST API (OAuth2 client credentials)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import msgspec

from partners.tradevest.settings import TradevestSettings
from partnersync.client import PartnerClient
from partnersync.config import Settings
from partnersync.errors import Retryable
from schemas.commands import PartnerRejection
from schemas.tradevest.entities import Page
from schemas.tradevest.errors import ErrorMessage
from schemas.tradevest.events import PARTNER
from schemas.tradevest.transfers import (
    CreateTransfer,
    CreateTransferResult,
    Transfer,
    TransferEnvelope,
)


class Token(msgspec.Struct):
    access_token: str
    expires_in: int = 3600
    token_type: str = "Bearer"


_token_decoder = msgspec.json.Decoder(Token)
_page_decoder = msgspec.json.Decoder(Page)
_error_decoder = msgspec.json.Decoder(ErrorMessage)
_transfer_decoder = msgspec.json.Decoder(TransferEnvelope)
_create_transfer_decoder = msgspec.json.Decoder(CreateTransferResult)
_encoder = msgspec.json.Encoder(decimal_format="number")  # amounts go out as JSON numbers
_REFRESH_MARGIN_S = 60  # refresh this long before the token expires


def rejection(response: httpx.Response) -> PartnerRejection:
    """Tradevest's ErrorMessage (message, errorCode, errorDetails), as sent."""
    status = response.status_code
    try:
        error = _error_decoder.decode(response.content)
    except msgspec.DecodeError:
        return PartnerRejection(status=status, message=response.text[:500])
    return PartnerRejection(
        status=status,
        message=error.message,
        errorCode=error.errorCode,
        details=msgspec.to_builtins(error.errorDetails),
    )


class TradevestClient(PartnerClient):
    partner = PARTNER

    def __init__(self, settings: Settings, http: httpx.AsyncClient):
        super().__init__(TradevestSettings.of(settings).base_url, http)
        self.settings = settings
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def token(self, *, refresh: bool = False) -> str:
        async with self._lock:
            if refresh or self._token is None or time.monotonic() >= self._expires:
                await self._fetch_token()
            assert self._token is not None
            return self._token

    async def _fetch_token(self) -> None:
        t = TradevestSettings.of(self.settings)
        form = {
            "grant_type": "client_credentials",
            "client_id": t.client_id,
            "client_secret": t.client_secret,
        }
        if t.scope:
            form["scope"] = t.scope
        try:
            response = await self.http.post(t.token_url, data=form)
        except httpx.TransportError as exc:
            raise Retryable(f"token request failed: {type(exc).__name__}") from exc
        if response.status_code != 200:
            self.raise_for(response)
            raise Retryable(f"token endpoint answered {response.status_code}")
        token = _token_decoder.decode(response.content)
        self._token = token.access_token
        self._expires = time.monotonic() + max(token.expires_in - _REFRESH_MARGIN_S, 1)

    def headers(self, acting_for: str | None) -> dict[str, str]:
        return {"Requestor-ID": acting_for} if acting_for else {}

    def rejection(self, response: httpx.Response) -> PartnerRejection:
        return rejection(response)

    async def get_transfer(self, transfer_id: str) -> Transfer:
        return _transfer_decoder.decode(await self.get(f"/transfers/{transfer_id}")).transfer

    async def pages(self, path: str, *, limit: int = 100, **params: Any) -> AsyncIterator[Any]:
        """Every item of a cursor-paged list (`data` + `pagination.cursor`), as raw JSON."""
        cursor: str | None = None
        while True:
            query = dict(params, limit=limit)
            if cursor:
                query["cursor"] = cursor
            page = _page_decoder.decode(await self.get(path, **query))
            for item in page.data:
                yield item
            cursor = page.pagination.cursor
            if not cursor or not page.data:
                return

    async def create_transfer(self, body: CreateTransfer, acting_for: str | None = None) -> str:
        response = await self.request(
            "POST",
            "/transfers",
            content=_encoder.encode(body),
            headers={"Content-Type": "application/json"},
            acting_for=acting_for,
        )
        self.raise_for(response)
        return str(_create_transfer_decoder.decode(response.content).transferId)

    async def register_webhook(self, event_type: str, url: str, headers: dict[str, str]) -> None:
        body = {
            "eventType": event_type,
            "url": url,
            "headers": [{"name": k, "value": v} for k, v in headers.items()],
        }
        response = await self.request("POST", "/webhooks", json=body)
        self.raise_for(response)

    async def delete_webhook(self, event_type: str) -> None:
        """DELETE /webhooks/{eventType}: 200 "Webhook deleted" (tradevest-api.md §2)."""
        response = await self.request("DELETE", f"/webhooks/{quote(event_type, safe='')}")
        self.raise_for(response)

    async def list_webhooks(self) -> list[dict[str, Any]]:
        response = await self.request("GET", "/webhooks")
        self.raise_for(response)
        return msgspec.json.decode(response.content, type=list[dict[str, Any]])
