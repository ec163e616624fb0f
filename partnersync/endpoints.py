"""Outbound webhook endpoints: the team's own services that subscribe to the mirror's
changes (#40). An endpoint is a URL, the changes it wants (`partner.kind.status` patterns,
`*` matching any part), and its signing secrets, newest first.

Deliveries are signed per Standard Webhooks (https://www.standardwebhooks.com): headers
`webhook-id`, `webhook-timestamp` and `webhook-signature`, the last a space-separated list
of `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per secret, so a receiver verifies
with either secret while a rotation is under way.

Key (keys.py): `ps:endpoints` — hash endpoint id → the Endpoint's JSON.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import msgspec
import redis

from partnersync import keys

SECRET_PREFIX = "whsec_"  # Standard Webhooks' secret form: whsec_ + base64 of the key


class EndpointError(ValueError):
    """A request about endpoints that cannot be done; the message says why."""


class Endpoint(msgspec.Struct, kw_only=True):
    id: str
    url: str
    events: list[str]  # partner.kind.status patterns
    secrets: list[str]  # newest first; every one signs while a rotation is under way
    createdAt: datetime
    disabled: bool = False
    disabledReason: str | None = None

    def wants(self, partner: str, kind: str, status: str) -> bool:
        name = f"{partner}.{kind}.{status}"
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.events)


_decoder = msgspec.json.Decoder(Endpoint)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def check_url(url: str) -> str:
    """https, or http to this machine (a local service, the tests)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EndpointError(f"not an http(s) URL: {url!r}")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise EndpointError(f"{url!r}: use https (http only to this machine)")
    return url


def check_events(patterns: Iterable[str], kinds: Iterable[tuple[str, str]]) -> list[str]:
    """Each `partner.kind.status` pattern, if some partner and kind it can match exist (an
    unknown one would match nothing, silently)."""
    known = {f"{p}.{k}" for p, k in kinds}
    out = []
    for pattern in (p.strip() for p in patterns):
        if not pattern:
            continue
        parts = pattern.split(".")
        if len(parts) > 3:
            raise EndpointError(f"{pattern!r}: partner.kind.status, at most three parts")
        head = ".".join((parts + ["*", "*"])[:2])
        if not any(fnmatch.fnmatchcase(k, head) for k in known):
            raise EndpointError(
                f"{pattern!r} matches no partner and kind; known: {', '.join(sorted(known))}"
            )
        out.append(".".join((parts + ["*", "*"])[:3]))
    if not out:
        raise EndpointError("--events names no change (e.g. 'tradevest.transfer.*')")
    return out


def add(connection: redis.Redis, url: str, events: list[str]) -> Endpoint:
    endpoint = Endpoint(id=f"ep_{uuid.uuid4().hex[:16]}", url=check_url(url), events=events,
                        secrets=[new_secret()], createdAt=datetime.now(UTC))  # fmt: skip
    save(connection, endpoint)
    return endpoint


def save(connection: redis.Redis, endpoint: Endpoint) -> None:
    connection.hset(keys.ENDPOINTS, endpoint.id, msgspec.json.encode(endpoint))


def get(connection: redis.Redis, endpoint_id: str) -> Endpoint:
    raw = connection.hget(keys.ENDPOINTS, endpoint_id)
    if raw is None:
        raise EndpointError(f"no endpoint {endpoint_id!r} (partnersync endpoints list)")
    return _decoder.decode(raw)


def listed(connection: redis.Redis) -> list[Endpoint]:
    """Every endpoint, oldest first (a handful: one per service the team runs)."""
    found = [_decoder.decode(raw) for raw in connection.hvals(keys.ENDPOINTS)]
    return sorted(found, key=lambda e: e.createdAt)


def remove(connection: redis.Redis, endpoint_id: str) -> None:
    if not connection.hdel(keys.ENDPOINTS, endpoint_id):
        raise EndpointError(f"no endpoint {endpoint_id!r} (partnersync endpoints list)")


def disable(connection: redis.Redis, endpoint_id: str, reason: str) -> Endpoint:
    endpoint = get(connection, endpoint_id)
    endpoint.disabled, endpoint.disabledReason = True, reason
    save(connection, endpoint)
    return endpoint


def enable(connection: redis.Redis, endpoint_id: str) -> Endpoint:
    """Resume delivery: what queued while it was off goes, oldest first per entity."""
    endpoint = get(connection, endpoint_id)
    endpoint.disabled, endpoint.disabledReason = False, None
    save(connection, endpoint)
    connection.hdel(keys.OUT_HEALTH, endpoint_id)
    return endpoint


def rotate(connection: redis.Redis, endpoint_id: str, keep: int = 2) -> Endpoint:
    """A new secret signs first; the newest `keep` sign until the next rotation, so the
    receiving service can switch to the new one at its own pace."""
    endpoint = get(connection, endpoint_id)
    endpoint.secrets = [new_secret(), *endpoint.secrets][:keep]
    save(connection, endpoint)
    return endpoint


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(endpoint: Endpoint, message_id: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(s, message_id, timestamp, body) for s in endpoint.secrets
        ),
    }


def ping(endpoint: Endpoint, timeout_s: float) -> httpx.Response:
    """A signed test delivery (`endpoints test`): the endpoint's answer."""
    message_id = f"ping_{uuid.uuid4().hex}"
    body = msgspec.json.encode({"type": "partnersync.ping", "endpoint": endpoint.id,
                                "at": datetime.now(UTC).isoformat()})  # fmt: skip
    with httpx.Client(timeout=timeout_s) as client:
        return client.post(endpoint.url, content=body, headers=headers(endpoint, message_id, body))
