"""The partner HTTP client base: one way to call a partner, whoever it is.

A partner's client (partners/<name>/client.py) says how it authenticates, how its error
bodies read and how its lists page; everything else is here, once: the Authorization
header, one token refresh on a 401, transport errors as Retryable, the mapping of a
non-2xx answer onto partnersync's failure classes, and the Retry-After / rate-limit reset
a retry must wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from partnersync.errors import NotFound, PartnerError, Retryable
from partnersync.ratelimit import Limiter
from schemas.commands import PartnerRejection

log = logging.getLogger("partnersync.client")

ErrorReader = Callable[[httpx.Response], PartnerRejection]


def _rate_limits(response: httpx.Response) -> dict[str, dict[str, float]]:
    """`X-RateLimit-<dimension>-<Limit|Remaining|Reset>` by dimension (Saxo's rate-limiting
    page: one set per dimension, e.g. AppDay, Session, SessionOrders; Reset in seconds)."""
    found: dict[str, dict[str, float]] = {}
    for name, value in response.headers.items():
        lowered = name.lower()
        if not lowered.startswith("x-ratelimit-"):
            continue
        dimension, _, field = lowered.removeprefix("x-ratelimit-").rpartition("-")
        if dimension and field in ("limit", "remaining", "reset"):
            with contextlib.suppress(ValueError):
                found.setdefault(dimension, {})[field] = float(value)
    return found


def spent(response: httpx.Response) -> list[tuple[str, float]]:
    """(dimension, seconds to its reset) of every dimension a 429 says is spent."""
    return [
        (dimension, v["reset"])
        for dimension, v in _rate_limits(response).items()
        if "reset" in v and v.get("remaining", 1) <= 0
    ]


def retry_after(response: httpx.Response) -> float | None:
    """Seconds before a retry: the reset of the exhausted rate-limit dimension (Remaining 0;
    the longest if several are), else Retry-After (seconds; an HTTP date is not used by
    either partner). A dimension with budget left does not hold the retry back: a Session
    bucket empty for 17 s must not wait for AppDay's reset hours away. Without a Remaining
    to tell which is spent, the soonest reset [inferred]."""
    exhausted = [reset for _, reset in spent(response)]
    if exhausted:
        return max(exhausted)
    resets = [v["reset"] for v in _rate_limits(response).values() if "reset" in v]
    if resets:
        return min(resets)
    with contextlib.suppress(KeyError, ValueError):
        return float(response.headers["retry-after"])
    return None


def raise_for(response: httpx.Response, read_error: ErrorReader, partner: str) -> None:
    """Map a non-2xx answer onto the failure classes: 404 NotFound; 401 (after the one
    refresh), 429 and 5xx Retryable; any other 4xx a PartnerError carrying the partner's
    error as sent."""
    status = response.status_code
    if status < 400:
        return
    rejection = read_error(response)
    operation = f"{response.request.method} {response.request.url.path}"
    code = rejection.errorCode
    log.log(
        logging.INFO if status == 404 else logging.WARNING,
        "partner call failed",
        extra={"partner": partner, "status": status, "errorCode": code,
               "xCorrelation": response.headers.get("x-correlation"),
               "path": response.request.url.path},
    )  # fmt: skip
    if status == 404:
        raise NotFound(f"{operation}: 404 {code or 'NotFound'}: {rejection.message}")
    if status == 429 or status >= 500 or status == 401:
        raise Retryable(
            f"{operation}: {partner} answered {status} {code or ''}".strip(),
            retry_after(response),
        )
    message = f"{code}: {rejection.message}" if code else rejection.message
    raise PartnerError(status, f"{message} ({operation})", rejection)


class PartnerClient:
    """One partner's API over a shared keep-alive httpx client."""

    partner: str = ""

    def __init__(
        self, base_url: str, http: httpx.AsyncClient, limiter: Limiter | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.limiter = limiter  # the partner's documented request budget, shared (Redis)

    # -- what a partner's client says ------------------------------------------------------

    async def token(self, *, refresh: bool = False) -> str:
        """A bearer token; `refresh` after the partner refused the last one."""
        raise NotImplementedError

    def headers(self, acting_for: str | None) -> dict[str, str]:
        """Headers this partner needs beyond Authorization, given whom the call acts for."""
        return {}

    def rejection(self, response: httpx.Response) -> PartnerRejection:
        """The partner's error body, as sent."""
        return PartnerRejection(status=response.status_code, message=response.text[:500])

    def pages(self, path: str, **params: Any) -> AsyncIterator[Any]:
        """Every item of a paged list."""
        raise NotImplementedError

    # -- the same for every partner --------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        acting_for: str | None = None,
        headers: dict[str, str] | None = None,
        paced: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call within the partner's budget (`paced`: the caller took its slot already);
        a 401 refreshes the token once; transport errors are Retryable."""
        url = self.base_url + path
        response: httpx.Response | None = None
        for attempt in (0, 1):
            if not paced or attempt:
                await self.pace(method, path)
            h = {**(headers or {}), **self.headers(acting_for)}
            h["Authorization"] = f"Bearer {await self.token(refresh=attempt == 1)}"
            try:
                response = await self.http.request(method, url, headers=h, **kwargs)
            except httpx.TransportError as exc:
                raise Retryable(f"{method} {path}: {type(exc).__name__}") from exc
            if response.status_code == 429 and self.limiter is not None:
                for dimension, reset in spent(response):  # every process backs off
                    await asyncio.to_thread(self.limiter.spent, method, path, dimension, reset)
            if response.status_code != 401:
                break
        assert response is not None
        return response

    async def pace(self, method: str, path: str) -> None:
        """Take one request of the partner's budget, waiting for it (ratelimit.py)."""
        if self.limiter is not None:
            await self.limiter.acquire(method, path)

    def over(self, http: httpx.AsyncClient) -> PartnerClient:
        """This client sending over another connection pool, its authentication shared (one
        token provider per process)."""
        clone = copy.copy(self)
        clone.http = http
        return clone

    def raise_for(self, response: httpx.Response) -> None:
        raise_for(response, self.rejection, self.partner)

    async def get(self, path: str, *, acting_for: str | None = None, **params: Any) -> bytes:
        """GET a resource; the body of a 2xx, else the classified failure."""
        response = await self.request("GET", path, acting_for=acting_for, params=params or None)
        self.raise_for(response)
        return response.content
