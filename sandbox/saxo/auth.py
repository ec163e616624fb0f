"""Saxo's token endpoint (the sandbox's stand-in for sim.logonvalidation.net/token), with
short-lived tokens so tests exercise refresh, expiry and revocation.

- `grant_type=refresh_token`: a live refresh token buys a new access token and a new refresh
  token (Saxo rotates them; the old one is spent).
- `grant_type=urn:saxobank:oauth:grant-type:personal-jwt`: certificate-based authentication;
  the assertion is an RS256 JWT whose `x5t` names a registered certificate and whose `iss`
  is the AppKey.
- Control (`POST /_sandbox/saxo/auth`): `{"access_ttl_s", "refresh_ttl_s"}` set lifetimes;
  `{"authorize": true}` returns a fresh refresh token (the operator's one-time login);
  `{"revoke": true}` revokes every refresh token; `{"certificate": PEM}` registers one.

The static developer token `sandbox` keeps working as SAXO_AUTH=static's token.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

STATIC_TOKEN = "sandbox"
APP_KEY = "sandbox-app"
APP_SECRET = "sandbox-secret"
PERSONAL_JWT = "urn:saxobank:oauth:grant-type:personal-jwt"


def _x5t(certificate: x509.Certificate) -> str:
    der = certificate.public_bytes(Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()


class SaxoAuth:
    def __init__(self, access_ttl_s: float = 1200, refresh_ttl_s: float = 3600) -> None:
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.access: dict[str, float] = {}  # token -> expiry (epoch s)
        self.refresh: dict[str, float] = {}
        self.certificates: dict[str, Any] = {}  # x5t -> public key
        self.counts = {"issued": 0, "refused": 0, "expiredCalls": 0}

    def valid(self, authorization: str | None) -> bool:
        if authorization == f"Bearer {STATIC_TOKEN}":
            return True
        token = (authorization or "").removeprefix("Bearer ")
        expiry = self.access.get(token)
        if expiry is not None and expiry < time.time():
            self.counts["expiredCalls"] += 1
        return expiry is not None and expiry >= time.time()

    def _issue(self) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        now = time.time()
        self.access[access] = now + self.access_ttl_s
        self.refresh[refresh] = now + self.refresh_ttl_s
        self.counts["issued"] += 1
        return {
            "access_token": access, "token_type": "Bearer", "expires_in": self.access_ttl_s,
            "refresh_token": refresh, "refresh_token_expires_in": self.refresh_ttl_s,
        }  # fmt: skip

    def _refuse(self, error: str, description: str) -> Response:
        self.counts["refused"] += 1
        return JSONResponse({"error": error, "error_description": description}, status_code=400)

    async def token(self, request: Request) -> Response:
        # application/x-www-form-urlencoded, parsed here (no multipart dependency needed)
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("client_id") != APP_KEY or form.get("client_secret") != APP_SECRET:
            self.counts["refused"] += 1
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = form.get("grant_type")
        if grant == "refresh_token":
            refresh = str(form.get("refresh_token", ""))
            expiry = self.refresh.pop(refresh, None)  # spent either way: Saxo rotates them
            if expiry is None or expiry < time.time():
                return self._refuse("invalid_grant", "refresh token revoked, spent or expired")
            return JSONResponse(self._issue())
        if grant == PERSONAL_JWT:
            assertion = str(form.get("assertion", ""))
            try:
                header = jwt.get_unverified_header(assertion)
                key = self.certificates[header.get("x5t", "")]
                claims = jwt.decode(
                    assertion, key, algorithms=["RS256"], options={"verify_aud": False}
                )
            except (jwt.PyJWTError, KeyError):
                return self._refuse("invalid_grant", "assertion not signed by a known certificate")
            if claims.get("iss") != APP_KEY or not claims.get("sub"):
                return self._refuse("invalid_grant", "iss must be the AppKey, sub the UserId")
            return JSONResponse(self._issue())
        return self._refuse("unsupported_grant_type", f"grant_type {grant!r}")

    def control(self, body: dict[str, Any]) -> dict[str, Any]:
        if "access_ttl_s" in body:
            self.access_ttl_s = float(body["access_ttl_s"])
        if "refresh_ttl_s" in body:
            self.refresh_ttl_s = float(body["refresh_ttl_s"])
        out: dict[str, Any] = {}
        if body.get("revoke"):
            self.refresh.clear()
        if body.get("certificate"):
            certificate = x509.load_pem_x509_certificate(str(body["certificate"]).encode())
            self.certificates[_x5t(certificate)] = certificate.public_key()
        if body.get("authorize"):
            out["refresh_token"] = self._issue()["refresh_token"]
        return {**out, **self.counts, "accessTtlS": self.access_ttl_s,
                "refreshTtlS": self.refresh_ttl_s}  # fmt: skip
