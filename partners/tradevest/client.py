"""The one HTTP client for Tradevest's REST API (OAuth2 client credentials)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import msgspec

from partnersync.config import Settings
from partnersync.errors import NotFound, PartnerError, Retryable
from schemas.tradevest.entities import Page
from schemas.tradevest.errors import ErrorMessage
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


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def raise_for(response: httpx.Response) -> None:
    """Map a non-2xx answer onto partnersync's failure classes."""
    status = response.status_code
    if status < 400:
        return
    if status == 404:
        raise NotFound(str(response.request.url.path))
    if status == 429 or status >= 500:
        raise Retryable(f"tradevest answered {status}", _retry_after(response))
    try:
        error = _error_decoder.decode(response.content)
        raise PartnerError(status, error.message, error)
    except msgspec.DecodeError:
        raise PartnerError(status, response.text[:200]) from None


class TradevestClient:
    def __init__(self, settings: Settings, http: httpx.AsyncClient):
        self.settings = settings
        self.http = http
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def token(self, *, force: bool = False) -> str:
        async with self._lock:
            if force or self._token is None or time.monotonic() >= self._expires:
                await self._fetch_token()
            assert self._token is not None
            return self._token

    async def _fetch_token(self) -> None:
        s = self.settings
        form = {
            "grant_type": "client_credentials",
            "client_id": s.tradevest_client_id,
            "client_secret": s.tradevest_client_secret,
        }
        if s.tradevest_scope:
            form["scope"] = s.tradevest_scope
        try:
            response = await self.http.post(s.tradevest_auth_url, data=form)
        except httpx.TransportError as exc:
            raise Retryable(f"token request failed: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise_for(response)
            raise Retryable(f"token endpoint answered {response.status_code}")
        token = _token_decoder.decode(response.content)
        self._token = token.access_token
        self._expires = time.monotonic() + max(token.expires_in - _REFRESH_MARGIN_S, 1)

    async def request(
        self,
        method: str,
        path: str,
        *,
        requestor_id: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call; a 401 refreshes the token once; transport errors are Retryable."""
        url = self.settings.tradevest_base_url.rstrip("/") + path
        extra_headers = headers
        for attempt in (0, 1):
            headers = dict(extra_headers or {})
            headers["Authorization"] = f"Bearer {await self.token(force=attempt == 1)}"
            if requestor_id:
                headers["Requestor-ID"] = requestor_id
            try:
                response = await self.http.request(method, url, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                raise Retryable(f"{method} {path}: {type(exc).__name__}") from exc
            if response.status_code != 401:
                return response
        return response

    async def get(self, path: str, *, requestor_id: str | None = None, **params: Any) -> bytes:
        """GET a resource; the body of a 2xx, else the classified failure."""
        response = await self.request("GET", path, requestor_id=requestor_id, params=params or None)
        raise_for(response)
        return response.content

    async def get_transfer(self, transfer_id: str) -> Transfer:
        return _transfer_decoder.decode(await self.get(f"/transfers/{transfer_id}")).transfer

    async def pages(self, path: str, *, limit: int = 100, **params: Any):
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

    async def create_transfer(self, body: CreateTransfer, requestor_id: str | None = None) -> str:
        response = await self.request(
            "POST",
            "/transfers",
            content=_encoder.encode(body),
            headers={"Content-Type": "application/json"},
            requestor_id=requestor_id,
        )
        raise_for(response)
        return str(_create_transfer_decoder.decode(response.content).transferId)

    async def register_webhook(self, event_type: str, url: str, headers: dict[str, str]) -> None:
        body = {
            "eventType": event_type,
            "url": url,
            "headers": [{"name": k, "value": v} for k, v in headers.items()],
        }
        response = await self.request("POST", "/webhooks", json=body)
        raise_for(response)

    async def list_webhooks(self) -> list[dict[str, Any]]:
        response = await self.request("GET", "/webhooks")
        raise_for(response)
        return msgspec.json.decode(response.content, type=list[dict[str, Any]])
