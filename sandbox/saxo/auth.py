"""Saxo's token endpoint (the sandbox's stand-in for sim.logonvalidation.net/token), with
short-lived tokens so tests exercise refresh, expiry and revocation.

- `grant_type=refresh_token`: a live refresh token buys a new access token and a new refresh
  token (Saxo rotates them; the old one is spent).
- `grant_type=urn:saxobank:oauth:grant-type:personal-jwt`: certificate-based authentication
  as Saxo's CBA page and samples describe it: an RS256 JWT whose `x5t` is the hex SHA-1
  thumbprint of a registered certificate (either case: the page's sample is lower case, the
  C# sample's Thumbprint upper case), `iss` the AppKey, `sub` a UserId, `aud` this token
  URL, `spurl` the app's AppUrl, and an `exp` not yet passed.
- `GET /saxo/authorize` and `grant_type=authorization_code`: the code flow with PKCE
  (oauth-authorization-code-grant-pkce): a localhost redirect URL (any port, as a PKCE app
  registers it without one), `code_challenge_method=S256`; the sandbox signs the user in at
  once and redirects with a code (single use, 5 minutes [inferred]) that is exchanged only
  with the same redirect_uri and the verifier of its challenge.
- Control (`POST /_sandbox/saxo/auth`): `{"access_ttl_s", "refresh_ttl_s"}` set lifetimes;
  `{"authorize": true}` returns a fresh refresh token (the operator's one-time login);
  `{"revoke": true}` revokes every refresh token; `{"certificate": PEM}` registers one.

The static developer token `sandbox` keeps working as SAXO_AUTH=static's token.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

STATIC_TOKEN = "sandbox"
APP_KEY = "sandbox-app"
APP_SECRET = "sandbox-secret"
APP_URL = "https://sandbox-app.example/"  # the sandbox app's AppUrl (spurl)
PERSONAL_JWT = "urn:saxobank:oauth:grant-type:personal-jwt"
CODE_TTL_S = 300.0
HEX_THUMBPRINT = re.compile(r"[0-9A-Fa-f]{40}")


def _x5t(certificate: x509.Certificate) -> str:
    return hashlib.sha1(certificate.public_bytes(Encoding.DER)).hexdigest()


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _local(redirect_uri: str) -> bool:
    parts = urlsplit(redirect_uri)
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost")


class SaxoAuth:
    def __init__(self, access_ttl_s: float = 1200, refresh_ttl_s: float = 3600) -> None:
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.access: dict[str, float] = {}  # token -> expiry (epoch s)
        self.refresh: dict[str, float] = {}
        self.certificates: dict[str, Any] = {}  # hex thumbprint (lower case) -> public key
        self.codes: dict[str, tuple[float, str, str]] = {}  # code -> (expiry, redirect, challenge)
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
            return self._personal_jwt(str(form.get("assertion", "")), str(request.url))
        if grant == "authorization_code":
            return self._authorization_code(form)
        return self._refuse("unsupported_grant_type", f"grant_type {grant!r}")

    def _personal_jwt(self, assertion: str, token_url: str) -> Response:
        try:
            x5t = str(jwt.get_unverified_header(assertion).get("x5t", ""))
        except jwt.PyJWTError:
            return self._refuse("invalid_request", "the assertion is not a JWT")
        if not HEX_THUMBPRINT.fullmatch(x5t):
            return self._refuse("invalid_grant", "x5t must be the certificate's hex thumbprint")
        key = self.certificates.get(x5t.lower())
        if key is None:
            return self._refuse("invalid_grant", "x5t names no registered certificate")
        try:
            claims = jwt.decode(
                assertion, key, algorithms=["RS256"], audience=token_url,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )  # fmt: skip
        except jwt.PyJWTError as exc:
            return self._refuse("invalid_grant", f"assertion refused: {exc}")
        if claims.get("iss") != APP_KEY or not claims.get("sub"):
            return self._refuse("invalid_grant", "iss must be the AppKey, sub the UserId")
        if claims.get("spurl") != APP_URL:
            return self._refuse("invalid_grant", "spurl must be the application's AppUrl")
        return JSONResponse(self._issue())

    def _authorization_code(self, form: dict[str, str]) -> Response:
        expiry, redirect, challenge = self.codes.pop(form.get("code", ""), (0.0, "", ""))
        if expiry < time.time():
            return self._refuse("invalid_grant", "code unknown, spent or expired")
        if form.get("redirect_uri") != redirect:
            return self._refuse("invalid_grant", "redirect_uri differs from the authorize request")
        if challenge and _challenge(form.get("code_verifier", "")) != challenge:
            return self._refuse("invalid_grant", "code_verifier does not match the challenge")
        return JSONResponse(self._issue())

    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        redirect = query.get("redirect_uri", "")
        if query.get("client_id") != APP_KEY or not _local(redirect):
            # never redirected: an unknown app or redirect URL is an error page at Saxo too
            return PlainTextResponse("unknown client_id or redirect_uri", status_code=400)
        answer: dict[str, str] = {"state": query.get("state", "")}
        challenge = query.get("code_challenge", "")
        if query.get("response_type") != "code":
            answer["error"] = "unsupported_response_type"
        elif challenge and query.get("code_challenge_method") != "S256":
            answer["error"] = "invalid_request"
            answer["error_description"] = "code_challenge_method must be S256"
        else:
            code = secrets.token_urlsafe(24)
            self.codes[code] = (time.time() + CODE_TTL_S, redirect, challenge)
            answer["code"] = code
        return RedirectResponse(redirect + "?" + urlencode(answer), status_code=302)

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
