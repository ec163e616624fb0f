"""Saxo authentication for production: refresh-token and certificate grants, one token per
deployment shared through Redis, refreshed before expiry, never sent stale.

The sandbox's token endpoint (/saxo/token) issues short-lived tokens here (1 s), so a few
seconds of calls span several lifetimes."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from partners.saxo import auth as saxo_auth
from partners.saxo import keys as saxo_keys
from partners.saxo.client import SaxoClient
from tests.conftest import base_env, settings_for

SANDBOX_APP_URL = "https://sandbox-app.example/"  # the AppUrl the sandbox's app is registered with

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


def certificate_env(saxo_env: dict[str, str], tmp_path) -> dict[str, str]:
    cert_file, key_file = self_signed(tmp_path)
    return dict(
        saxo_env, SAXO_AUTH="certificate", SAXO_CERTIFICATE_FILE=cert_file,
        SAXO_PRIVATE_KEY_FILE=key_file, SAXO_USER_ID="12345", SAXO_APP_URL=SANDBOX_APP_URL,
    )  # fmt: skip


def test_assertion_follows_saxos_samples(saxo_env: dict[str, str], tmp_path) -> None:
    """Saxo's CBA page shows x5t as a 40-digit hex thumbprint (935093f1690900…), its C#
    sample sends X509Certificate2.Thumbprint (hex), its Node and PHP samples the certificate
    manager's fingerprint (hex); iss=AppKey, sub=UserId, aud=the token URL, spurl=AppUrl, a
    short exp (3 s to 1 min in the samples)."""
    import jwt

    env = certificate_env(saxo_env, tmp_path)
    settings = settings_for(env)
    assertion = saxo_auth.CertificateGrant(settings).assertion()
    der = x509.load_pem_x509_certificate(Path(env["SAXO_CERTIFICATE_FILE"]).read_bytes())
    expected = hashlib.sha1(der.public_bytes(serialization.Encoding.DER)).hexdigest()
    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == "RS256"
    assert header["x5t"].lower() == expected and len(header["x5t"]) == 40
    claims = jwt.decode(assertion, options={"verify_signature": False})
    assert (claims["iss"], claims["sub"]) == ("sandbox-app", "12345")
    assert (claims["aud"], claims["spurl"]) == (env["SAXO_TOKEN_URL"], SANDBOX_APP_URL)
    assert 0 < claims["exp"] - time.time() <= 60


def test_sandbox_refuses_what_saxo_would(
    saxo_env: dict[str, str], sandbox_url: str, tmp_path
) -> None:
    """The sandbox's token endpoint checks the assertion as Saxo documents it: a base64url
    x5t (RFC 7515's encoding, which none of Saxo's samples use), another aud, another
    spurl or an expired assertion is refused."""
    import jwt

    env = certificate_env(saxo_env, tmp_path)
    pem = Path(env["SAXO_CERTIFICATE_FILE"]).read_text()
    httpx.post(sandbox_url + "/_sandbox/saxo/auth", json={"certificate": pem}).raise_for_status()
    key = Path(env["SAXO_PRIVATE_KEY_FILE"]).read_bytes()
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha1(der).digest()
    now = int(time.time())
    good = {"iss": "sandbox-app", "sub": "12345", "aud": env["SAXO_TOKEN_URL"],
            "spurl": SANDBOX_APP_URL, "exp": now + 30}  # fmt: skip

    def post(claims: dict[str, object], x5t: str) -> httpx.Response:
        assertion = jwt.encode(claims, key, algorithm="RS256", headers={"x5t": x5t})
        form = {"grant_type": saxo_auth.PERSONAL_JWT, "assertion": assertion,
                "client_id": "sandbox-app", "client_secret": "sandbox-secret"}  # fmt: skip
        return httpx.post(env["SAXO_TOKEN_URL"], data=form)

    hexprint = digest.hex().upper()  # as the C# sample sends it
    assert post(good, hexprint).status_code == 200
    b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert post(good, b64).status_code == 400
    assert post(dict(good, aud="https://elsewhere/token"), hexprint).status_code == 400
    assert post(dict(good, spurl="https://other.app"), hexprint).status_code == 400
    assert post(dict(good, exp=now - 30), hexprint).status_code == 400


def test_certificate_grant(saxo_env: dict[str, str], sandbox_url: str, r, tmp_path) -> None:
    env = certificate_env(saxo_env, tmp_path)
    cert_file = env["SAXO_CERTIFICATE_FILE"]
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


def login(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    """`partnersync saxo login --no-browser` started; returns it and the authorize URL it
    prints for the operator's browser."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "partnersync", "saxo", "login", "--no-browser", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip().startswith("http"):
            return proc, line.strip()
    proc.wait(10)
    raise AssertionError(f"no authorize URL printed: {proc.stderr.read() if proc.stderr else ''}")


def test_login_with_pkce_stores_the_deployments_token(
    saxo_env: dict[str, str], sandbox_url: str, r: redis.Redis
) -> None:
    """The first authorization, as Saxo's PKCE sample does it: the authorize URL with a
    S256 code_challenge and a state, a listener on 127.0.0.1 at a free port for the
    redirect, the code exchanged with its code_verifier. The token lands where SAXO_AUTH=code
    reads it; no token is printed."""
    env = {k: v for k, v in saxo_env.items() if k != "SAXO_REFRESH_TOKEN"}
    settings = settings_for(env)
    r.delete(saxo_keys.TOKEN)
    with pytest.raises(saxo_auth.SaxoAuthError, match="saxo login"):
        asyncio.run(calls(settings, r, 1))  # nothing to refresh with yet
    proc, url = login(env)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]
    assert query["client_id"] == ["sandbox-app"] and query["state"][0]
    redirect = urlsplit(query["redirect_uri"][0])
    assert redirect.hostname == "127.0.0.1" and redirect.port  # a free port, added
    # the operator's browser: the sandbox signs in at once and redirects to the listener
    page = httpx.get(url, follow_redirects=True, timeout=10)
    assert page.status_code == 200 and "partnersync" in page.text
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    stored = saxo_auth.SaxoToken(r, settings).load()
    assert stored is not None and stored.refresh_token
    assert stored.access_token not in out + err and stored.refresh_token not in out + err
    assert asyncio.run(calls(settings, r, 2)) == 2


def test_login_refuses_a_foreign_redirect_and_the_sandbox_a_wrong_verifier(
    saxo_env: dict[str, str], sandbox_url: str, r: redis.Redis
) -> None:
    env = {k: v for k, v in saxo_env.items() if k != "SAXO_REFRESH_TOKEN"}
    proc, url = login(env, "--timeout", "20")
    query = parse_qs(urlsplit(url).query)
    redirect = query["redirect_uri"][0]
    # a redirect that does not carry the state it was sent with (a forged callback)
    page = httpx.get(redirect, params={"code": "x", "state": "forged"}, timeout=10)
    assert page.status_code == 400
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1 and "state" in err and "Traceback" not in err
    # the sandbox, as Saxo: a code is only exchanged with the verifier of its challenge
    answer = httpx.get(url, follow_redirects=False, timeout=10)
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "client_id": "sandbox-app", "client_secret": "sandbox-secret",
            "code_verifier": "not-the-verifier-" + "x" * 40}  # fmt: skip
    refused = httpx.post(env["SAXO_TOKEN_URL"], data=form)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
