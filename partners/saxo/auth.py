"""Saxo bearer tokens for deployments that run unattended.

Three providers behind one interface (`token()`, `refresh()`):

- `StaticToken` (SAXO_AUTH=static): SAXO_TOKEN, e.g. the 24-hour developer token. The simple
  option; it stops working when the token expires.
- `CodeGrant` (SAXO_AUTH=code): the Authorization Code grant. An operator authorizes once in a
  browser and hands partnersync the refresh token (SAXO_REFRESH_TOKEN, or `partnersync saxo
  auth --refresh-token`); from then on access tokens come from `grant_type=refresh_token`.
  Saxo rotates refresh tokens: the newest is kept in Redis, durably.
- `CertificateGrant` (SAXO_AUTH=certificate): certificate-based authentication, the personal
  JWT grant (`urn:saxobank:oauth:grant-type:personal-jwt`): an RS256 JWT signed with the key
  of a MyAccount certificate (header `x5t` = its SHA-1 thumbprint; claims iss=AppKey,
  sub=UserId, spurl=AppUrl, aud=the token URL, exp) buys an access and a refresh token; the
  refresh token is used until it expires, then a new assertion.

The grants share one token per deployment through Redis (`SaxoToken`'s keys): whichever
process needs a fresh one takes a lock, refreshes `REFRESH_MARGIN_S` before expiry, stores
it; the others read it. A refresh that fails raises `SaxoAuthError` and nothing is sent with
a stale token. Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import httpx
import msgspec
import redis

from partners.saxo import keys as saxo_keys
from partners.saxo.settings import SaxoSettings
from partnersync.config import Settings
from partnersync.errors import PartnerError, Retryable

log = logging.getLogger("partnersync.saxo.auth")

REFRESH_MARGIN_S = 60.0  # refresh this long before the access token expires (at most half)
LOCK_MS = 15_000
PERSONAL_JWT = "urn:saxobank:oauth:grant-type:personal-jwt"


class SaxoAuthError(Retryable):
    """No valid token could be had (refresh token revoked or expired, token endpoint down):
    nothing is sent; the work is retried with backoff and the log says what to do."""


class TokenProvider(Protocol):
    async def token(self) -> str: ...
    async def refresh(self) -> str: ...


class StaticToken:
    def __init__(self, settings: Settings):
        self.settings = settings

    async def token(self) -> str:
        return self.token_sync()

    async def refresh(self) -> str:
        from partnersync import config

        # a rotated token may have been put into the environment of this process
        return SaxoSettings.of(config.load()).token or await self.token()

    def token_sync(self) -> str:
        token = SaxoSettings.of(self.settings).token
        if not token:
            raise PartnerError(401, "SAXO_TOKEN is not set")
        return token


class Token(msgspec.Struct, kw_only=True):
    """What the token endpoint gave, with absolute expiries (epoch seconds)."""

    access_token: str
    expires_at: float
    lifetime: float = 0.0  # expires_in as given: the refresh margin is at most half of it
    refresh_token: str | None = None
    refresh_expires_at: float | None = None


class _Answer(msgspec.Struct, kw_only=True):
    access_token: str
    expires_in: float
    refresh_token: str | None = None
    refresh_token_expires_in: float | None = None


class SaxoToken:
    """The deployment's Saxo token in Redis, and the lock its refresher holds.

    Keys: `ps:saxo:token` (the Token as JSON, no TTL: the refresh token inside must survive),
    `ps:saxo:token:lock` (SET NX PX).
    """

    KEY = saxo_keys.TOKEN
    LOCK = saxo_keys.TOKEN_LOCK

    def __init__(self, connection: redis.Redis, settings: Settings):
        self.connection = connection
        self.settings = settings
        self._cached: Token | None = None

    def load(self) -> Token | None:
        raw = self.connection.get(self.KEY)
        return None if raw is None else msgspec.json.decode(raw, type=Token)

    def store(self, token: Token) -> None:
        self.connection.set(self.KEY, msgspec.json.encode(token))

    def fresh(self, token: Token | None, now: float) -> bool:
        if token is None:
            return False
        return token.expires_at - now > min(REFRESH_MARGIN_S, token.lifetime / 2)

    def cached(self) -> str | None:
        """This process's access token while it is fresh (no Redis round trip)."""
        if self._cached and self.fresh(self._cached, time.time()):
            return self._cached.access_token
        return None

    def get(self, grant: Grant, *, stale: str | None = None) -> str:
        """A valid access token: this process's, the deployment's, or a new one. `stale`: a
        token Saxo just refused (401), never handed out again."""
        now = time.time()
        if self._cached and self._cached.access_token != stale and self.fresh(self._cached, now):
            return self._cached.access_token
        deadline = time.monotonic() + LOCK_MS / 1000
        while True:
            token = self.load()
            if token and token.access_token != stale and self.fresh(token, time.time()):
                self._cached = token
                return token.access_token
            me = uuid.uuid4().hex
            if self.connection.set(self.LOCK, me, nx=True, px=LOCK_MS):
                try:
                    token = self.load()  # another refresher may have finished meanwhile
                    if not (
                        token and token.access_token != stale and self.fresh(token, time.time())
                    ):
                        token = grant.obtain(token)
                        self.store(token)
                    self._cached = token
                    return token.access_token
                finally:
                    # release only our own lock
                    if self.connection.get(self.LOCK) == me.encode():
                        self.connection.delete(self.LOCK)
            if time.monotonic() > deadline:
                raise SaxoAuthError("Saxo token: another process holds the refresh lock too long")
            time.sleep(0.05)


class Grant(Protocol):
    def obtain(self, current: Token | None) -> Token: ...


def exchange(settings: Settings, form: dict[str, str], what: str) -> Token:
    saxo = SaxoSettings.of(settings)
    form = {**form, "client_id": saxo.app_key or "", "client_secret": saxo.app_secret or ""}
    try:
        response = httpx.post(saxo.token_url, data=form, timeout=settings.http_timeout_s)
    except httpx.HTTPError as exc:
        raise SaxoAuthError(
            f"Saxo token endpoint unreachable ({what}): {type(exc).__name__}"
        ) from None
    if response.status_code != 200:
        try:
            error = str(response.json().get("error", ""))
        except ValueError:
            error = ""
        hint = (
            " — the refresh token is revoked or expired: authorize again with "
            "`partnersync saxo login`"
            if what == "refresh_token"
            else ""
        )
        log.error(
            "saxo token refused",
            extra={"grant": what, "status": response.status_code, "error": error},
        )
        raise SaxoAuthError(f"Saxo refused the {what} grant ({response.status_code} {error}){hint}")
    answer = msgspec.json.decode(response.content, type=_Answer)
    now = time.time()
    return Token(
        access_token=answer.access_token,
        expires_at=now + answer.expires_in,
        lifetime=answer.expires_in,
        refresh_token=answer.refresh_token,
        refresh_expires_at=now + answer.refresh_token_expires_in
        if answer.refresh_token_expires_in
        else None,
    )


class CodeGrant:
    def __init__(self, settings: Settings):
        self.settings = settings

    def obtain(self, current: Token | None) -> Token:
        given = SaxoSettings.of(self.settings).refresh_token
        refresh = (current.refresh_token if current else None) or given
        if not refresh:
            raise SaxoAuthError(
                "SAXO_AUTH=code has no refresh token: authorize once with "
                "`partnersync saxo login` (or set SAXO_REFRESH_TOKEN)"
            )
        return exchange(
            self.settings,
            {"grant_type": "refresh_token", "refresh_token": refresh},
            "refresh_token",
        )


def thumbprint(certificate_pem: bytes) -> str:
    """x5t: the certificate's SHA-1 (DER) thumbprint in hex, as Saxo's CBA page shows it
    (sample `935093f1690900…`, 40 digits) and its C#, Node and PHP samples send it (the
    certificate manager's thumbprint), not RFC 7515's base64url."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(certificate_pem).public_bytes(Encoding.DER)
    return hashlib.sha1(der).hexdigest()


class CertificateGrant:
    def __init__(self, settings: Settings):
        self.settings = settings

    def assertion(self) -> str:
        import jwt

        s = SaxoSettings.of(self.settings)
        certificate = Path(s.certificate_file or "").read_bytes()
        key = Path(s.private_key_file or "").read_bytes()
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": s.app_key, "sub": s.user_id, "aud": s.token_url,
            "exp": now + 60, "iat": now, "spurl": s.app_url or "",
        }  # fmt: skip
        return jwt.encode(claims, key, algorithm="RS256", headers={"x5t": thumbprint(certificate)})

    def obtain(self, current: Token | None) -> Token:
        if (
            current
            and current.refresh_token
            and (current.refresh_expires_at or 0) > time.time() + 5
        ):
            try:
                return exchange(
                    self.settings,
                    {"grant_type": "refresh_token", "refresh_token": current.refresh_token},
                    "refresh_token",
                )
            except SaxoAuthError:
                pass  # a new assertion does not need the refresh token
        try:
            assertion = self.assertion()
        except (OSError, ValueError) as exc:
            raise SaxoAuthError(f"SAXO_CERTIFICATE_FILE / SAXO_PRIVATE_KEY_FILE: {exc}") from None
        return exchange(
            self.settings, {"grant_type": PERSONAL_JWT, "assertion": assertion}, "personal-jwt"
        )


class SharedToken:
    """The async provider over a grant and the deployment's token in Redis."""

    def __init__(self, store: SaxoToken, grant: Grant):
        self.store = store
        self.grant = grant
        self._last: str | None = None

    async def token(self) -> str:
        cached = self.store.cached()
        if cached is not None:  # no thread hop while this process's token is fresh
            self._last = cached
            return cached
        self._last = await asyncio.to_thread(self.store.get, self.grant)
        return self._last

    async def refresh(self) -> str:
        """After a 401: a token other than the refused one."""
        self._last = await asyncio.to_thread(self.store.get, self.grant, stale=self._last)
        return self._last

    def token_sync(self) -> str:
        return self.store.get(self.grant)


def provider(settings: Settings, connection: redis.Redis | None) -> StaticToken | SharedToken:
    """The token provider SAXO_AUTH names (static needs no Redis)."""
    if SaxoSettings.of(settings).auth == "static":
        return StaticToken(settings)
    if connection is None:
        raise SaxoAuthError(
            f"SAXO_AUTH={SaxoSettings.of(settings).auth} keeps its token in Redis: REDIS_URL"
        )
    grant: Grant = (
        CodeGrant(settings)
        if SaxoSettings.of(settings).auth == "code"
        else CertificateGrant(settings)
    )
    return SharedToken(SaxoToken(connection, settings), grant)
