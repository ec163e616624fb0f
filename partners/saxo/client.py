"""The one HTTP client for Saxo OpenAPI.

Authentication is a token provider (partners/saxo/auth.py): SAXO_TOKEN, the Authorization Code
grant's refresh tokens, or certificate-based authentication; a 401 asks it for another token
once.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import httpx
import msgspec

from partners.saxo.auth import StaticToken, TokenProvider
from partnersync.config import Settings
from partnersync.errors import NotFound, PartnerError, Retryable
from schemas.saxo.errors import ErrorEnvelope

log = logging.getLogger("partnersync.saxo")

_error_decoder = msgspec.json.Decoder(ErrorEnvelope)


def rate_limit_reset(response: httpx.Response) -> float | None:
    """The longest `X-RateLimit-<dimension>-Reset` (seconds), else Retry-After."""
    resets = []
    for name, value in response.headers.items():
        if name.lower().startswith("x-ratelimit-") and name.lower().endswith("-reset"):
            with contextlib.suppress(ValueError):
                resets.append(float(value))
    if resets:
        return max(resets)
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def saxo_error(response: httpx.Response) -> tuple[str | None, str, dict[str, list[str]]]:
    """(ErrorCode, Message, ModelState) of an error answer (401 has an empty body)."""
    try:
        info = _error_decoder.decode(response.content).error()
    except msgspec.DecodeError:
        info = None
    if info is None:
        return None, response.text[:200] or response.reason_phrase, {}
    return info.ErrorCode, info.Message, info.ModelState


def raise_for(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    correlation = response.headers.get("x-correlation")
    code, message, model_state = saxo_error(response)
    log.warning(
        "saxo call failed",
        extra={"status": status, "errorCode": code, "xCorrelation": correlation,
               "path": response.request.url.path},
    )  # fmt: skip
    operation = f"{response.request.method} {response.request.url.path}"
    if status == 404:
        raise NotFound(f"{operation}: 404 {code or 'NotFound'}: {message}")
    if status == 429 or status >= 500 or status == 401:
        raise Retryable(
            f"{operation}: saxo answered {status} {code or ''}".strip(), rate_limit_reset(response)
        )
    raise PartnerError(
        status, f"{code}: {message} ({operation})", {"ErrorCode": code, "ModelState": model_state}
    )


class SaxoClient:
    def __init__(
        self, settings: Settings, http: httpx.AsyncClient, tokens: TokenProvider | None = None
    ):
        self.settings = settings
        self.http = http
        self.tokens = tokens or StaticToken(settings)

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        requestor_id: str | None = None,  # Tradevest's; unused here, same signature
        **kwargs: Any,
    ) -> httpx.Response:
        """One call; a 401 refreshes the token once; transport errors are Retryable."""
        url = self.settings.saxo_base_url.rstrip("/") + path
        token = await self.tokens.token()
        for attempt in (0, 1):
            h = dict(headers or {}, Authorization=f"Bearer {token}")
            try:
                response = await self.http.request(method, url, headers=h, **kwargs)
            except httpx.TransportError as exc:
                raise Retryable(f"{method} {path}: {type(exc).__name__}") from exc
            if response.status_code != 401 or attempt == 1:
                return response
            token = await self.tokens.refresh()
        return response

    async def get(self, path: str, **params: Any) -> bytes:
        response = await self.request("GET", path, params=params or None)
        raise_for(response)
        return response.content

    async def pages(self, path: str, **params: Any):
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
            raise_for(response)
            page = msgspec.json.decode(response.content, type=dict[str, Any])
