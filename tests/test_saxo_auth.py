"""Saxo authentication for production: refresh-token and certificate grants, one token per
deployment shared through Redis, refreshed before expiry, never sent stale.

The sandbox's token endpoint (/saxo/token) issues short-lived tokens here (1 s), so a few
seconds of calls span several lifetimes."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from partners.saxo import auth as saxo_auth
from partners.saxo.client import SaxoClient
from tests.conftest import base_env, settings_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def saxo_env(sandbox_url: str, r: redis.Redis, redis_server) -> Iterator[dict[str, str]]:
    control = sandbox_url + "/_sandbox/saxo/auth"
    httpx.post(control, json={"access_ttl_s": 1, "refresh_ttl_s": 60}).raise_for_status()
    refresh = httpx.post(control, json={"authorize": True}).json()["refresh_token"]
    yield base_env(
        redis_server.url,
        SAXO_BASE_URL=sandbox_url + "/saxo/openapi",
        SAXO_TOKEN_URL=sandbox_url + "/saxo/token",
        SAXO_AUTH="code",
        SAXO_APP_KEY="sandbox-app",
        SAXO_APP_SECRET="sandbox-secret",
        SAXO_REFRESH_TOKEN=refresh,
    )
    httpx.post(control, json={"access_ttl_s": 1200, "refresh_ttl_s": 3600}).raise_for_status()


def auth_counts(sandbox_url: str) -> dict[str, float]:
    return httpx.post(sandbox_url + "/_sandbox/saxo/auth", json={}).json()


async def calls(settings, connection: redis.Redis, n: int, pause: float = 0.15) -> int:
    """n partner calls through one client, `pause` apart; each must answer 2xx (a 401 or
    an auth failure raises)."""
    async with httpx.AsyncClient() as http:
        client = SaxoClient(settings, http, saxo_auth.provider(settings, connection))
        for _ in range(n):
            await client.get("/cm/v2/signups/options")
            await asyncio.sleep(pause)
    return n


def test_code_grant_refreshes_across_lifetimes_and_never_sends_a_stale_token(
    saxo_env: dict[str, str], sandbox_url: str, r: redis.Redis
) -> None:
    settings = settings_for(saxo_env)
    before = auth_counts(sandbox_url)
    asyncio.run(calls(settings, r, 25))  # ~4 s: about four access-token lifetimes
    after = auth_counts(sandbox_url)
    assert after["issued"] - before["issued"] >= 3  # refreshed, rotating refresh tokens
    assert after["expiredCalls"] == before["expiredCalls"]  # refreshed before expiry
    stored = saxo_auth.SaxoToken(r, settings).load()
    assert stored is not None and stored.refresh_token != saxo_env["SAXO_REFRESH_TOKEN"]


def test_one_refresher_per_deployment(saxo_env: dict[str, str], sandbox_url: str, r) -> None:
    settings = settings_for(saxo_env)
    before = auth_counts(sandbox_url)["issued"]
    first, second = (saxo_auth.SaxoToken(redis.Redis.from_url(saxo_env["REDIS_URL"]), settings)
                     for _ in range(2))  # fmt: skip
    grant = saxo_auth.CodeGrant(settings)
    assert first.get(grant) == second.get(grant)  # the second read the first's token
    assert auth_counts(sandbox_url)["issued"] - before == 1


def test_revoked_refresh_token_is_a_clear_error_and_nothing_is_sent(
    saxo_env: dict[str, str], sandbox_url: str, r: redis.Redis
) -> None:
    settings = settings_for(saxo_env)
    httpx.post(sandbox_url + "/_sandbox/saxo/auth", json={"revoke": True}).raise_for_status()
    sent = httpx.get(sandbox_url + "/_sandbox/contract").json()["operations"]
    options_before = sent.get("SignUpV2GetSignupOptions", {}).get("requests", 0)
    with pytest.raises(saxo_auth.SaxoAuthError, match="revoked or expired"):
        asyncio.run(calls(settings, r, 1))
    sent = httpx.get(sandbox_url + "/_sandbox/contract").json()["operations"]
    assert sent.get("SignUpV2GetSignupOptions", {}).get("requests", 0) == options_before
    # the operator authorizes again: `partnersync saxo auth --refresh-token` takes it
    fresh = httpx.post(sandbox_url + "/_sandbox/saxo/auth", json={"authorize": True}).json()
    saxo_auth.SaxoToken(r, settings).store(
        saxo_auth.Token(access_token="", expires_at=0, refresh_token=fresh["refresh_token"])
    )
    assert asyncio.run(calls(settings, r, 1)) == 1


def self_signed(tmp_path) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "partnersync test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def test_certificate_grant(saxo_env: dict[str, str], sandbox_url: str, r, tmp_path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    env = dict(
        saxo_env, SAXO_AUTH="certificate", SAXO_CERTIFICATE_FILE=cert_file,
        SAXO_PRIVATE_KEY_FILE=key_file, SAXO_USER_ID="12345", SAXO_APP_URL="https://app.example",
    )  # fmt: skip
    settings = settings_for(env)
    with pytest.raises(saxo_auth.SaxoAuthError, match="personal-jwt"):
        asyncio.run(calls(settings, r, 1))  # the certificate is not registered yet
    pem = Path(cert_file).read_text()
    httpx.post(sandbox_url + "/_sandbox/saxo/auth", json={"certificate": pem}).raise_for_status()
    before = auth_counts(sandbox_url)
    asyncio.run(calls(settings, r, 15))  # ~2.5 s: two lifetimes and more
    after = auth_counts(sandbox_url)
    assert after["issued"] - before["issued"] >= 2
    assert after["expiredCalls"] == before["expiredCalls"]


def test_settings_name_what_a_grant_needs() -> None:
    from partnersync.config import ConfigError, load

    with pytest.raises(ConfigError, match="SAXO_APP_KEY"):
        load({"SAXO_AUTH": "code"}, state_fallback=False)
    with pytest.raises(ConfigError, match="static, code, certificate"):
        load({"SAXO_AUTH": "magic"}, state_fallback=False)
