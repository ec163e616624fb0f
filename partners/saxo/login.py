"""The first authorization of SAXO_AUTH=code: an operator signs in once in a browser.

As Saxo's PKCE sample does it (openapi-samples-csharp authentication/Authentication_PKCE,
its guide oauth-authorization-code-grant-pkce): the app registers a localhost redirect URL
without a port; the sample listens on a free port of that host and sends the URL with the
port added. The authorize request carries `response_type=code`, `client_id`, `state` and a
S256 `code_challenge`; the redirect brings `code` and `state` back (or `error` and
`error_description`); the code is exchanged with `grant_type=authorization_code`, its
`redirect_uri` and the `code_verifier`. AppSecret goes along as the code flow's
client_secret (Authentication_CodeFlow). The token is stored where the code grant reads
it (`SaxoToken`, Redis, durable) and never printed.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import msgspec

from partners.saxo.auth import SaxoAuthError, Token, exchange
from partners.saxo.settings import SaxoSettings
from partnersync.config import Settings


class LoginError(Exception):
    """The authorization did not complete (refused, forged, timed out): nothing stored."""


class Callback(msgspec.Struct):
    code: str | None = None
    state: str | None = None
    error: str | None = None
    error_description: str | None = None


def authorize_url(settings: Settings) -> str:
    """SAXO_AUTHORIZE_URL, or the token URL's sibling: Saxo serves `/authorize` beside
    `/token` (sim.logonvalidation.net, live.logonvalidation.net)."""
    saxo = SaxoSettings.of(settings)
    if saxo.authorize_url:
        return saxo.authorize_url
    return saxo.token_url.rstrip("/").rsplit("/", 1)[0] + "/authorize"


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, code_challenge): 43 to 128 URL-safe characters, and
    BASE64URL(SHA256(verifier)) without padding (RFC 7636; Saxo's sample computes it so)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class _Handler(BaseHTTPRequestHandler):
    server: _Listener

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        if url.path != self.server.path:  # a browser's /favicon.ico is not the redirect
            self.send_error(404)
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        callback = msgspec.convert(query, Callback)
        accepted = self.server.take(callback)
        self.send_response(200 if accepted else 400)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        message = (
            "partnersync: signed in to Saxo. You can close this window."
            if accepted
            else "partnersync: this sign-in was not accepted; see the terminal."
        )
        self.wfile.write(message.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass  # the query holds the code: never logged


class _Listener(HTTPServer):
    def __init__(self, address: tuple[str, int], state: str, path: str):
        super().__init__(address, _Handler)
        self.state = state
        self.path = path  # the redirect URL's path: only a request to it is the callback
        self.callback: Callback | None = None
        self.done = threading.Event()

    def take(self, callback: Callback) -> bool:
        if self.done.is_set():
            return False
        self.callback = callback
        self.done.set()
        return callback.state == self.state and callback.error is None and bool(callback.code)


class Login:
    """One sign-in: `url` for the browser, `wait()` for the token."""

    def __init__(self, settings: Settings):
        self.settings = settings
        saxo = SaxoSettings.of(settings)
        registered = urlsplit(saxo.redirect_url)
        host = registered.hostname or "127.0.0.1"
        self.listener = _Listener(
            (host, registered.port or 0), secrets.token_urlsafe(24), registered.path or "/"
        )
        port = self.listener.server_address[1]
        netloc = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        self.redirect_uri = urlunsplit(
            (registered.scheme or "http", netloc, registered.path or "/", "", "")
        )
        self.verifier, challenge = pkce_pair()
        query = {
            "response_type": "code",
            "client_id": saxo.app_key or "",
            "redirect_uri": self.redirect_uri,
            "state": self.listener.state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        self.url = authorize_url(settings) + "?" + urlencode(query)

    def wait(self, timeout_s: float) -> Token:
        thread = threading.Thread(target=self.listener.serve_forever, daemon=True)
        thread.start()
        try:
            if not self.listener.done.wait(timeout_s):
                raise LoginError(f"no sign-in came back within {timeout_s:.0f} s")
        finally:
            self.listener.shutdown()
            self.listener.server_close()
        callback = self.listener.callback or Callback()
        if callback.error:
            raise LoginError(f"Saxo refused: {callback.error} {callback.error_description or ''}")
        if callback.state != self.listener.state:
            raise LoginError("the redirect's state is not the one sent: sign-in refused")
        if not callback.code:
            raise LoginError("the redirect carried no code")
        form = {
            "grant_type": "authorization_code",
            "code": callback.code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.verifier,
        }
        try:
            return exchange(self.settings, form, "authorization_code")
        except SaxoAuthError as exc:
            raise LoginError(str(exc)) from None
