"""Delivery authentication: header secrets, Standard Webhooks (interoperating with the
reference libraries), the source allowlist."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks
from hypothesis import given
from hypothesis import strategies as st
from svix.webhooks import Webhook as SvixWebhook

from partnersync.webhookauth import HeaderAuth, SecretError, StandardWebhooksAuth
from receiver.allowlist import SourceAllowlist
from schemas.tradevest.intake import too_deep


def test_any_configured_secret_passes_for_rotation() -> None:
    auth = HeaderAuth("api-key", ["old-secret", "new-secret"])
    assert auth.check({"api-key": "old-secret"}) is None
    assert auth.check({"api-key": "new-secret"}) is None
    assert auth.check({"api-key": "other"}) is not None
    assert auth.check({}) is not None


def test_no_secret_configured_refuses_everything() -> None:
    assert HeaderAuth("api-key", []).check({"api-key": ""}) is not None


@given(st.text(min_size=1, max_size=40), st.text(max_size=40))
def test_only_the_exact_secret_passes(secret: str, presented: str) -> None:
    auth = HeaderAuth("api-key", [secret])
    assert (auth.check({"api-key": presented}) is None) == (presented == secret)


SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER = "whsec_" + base64.b64encode(os.urandom(24)).decode()
BODY = json.dumps(
    {"transferId": "3f0c2a52-6a43-4c42-9a8e-0c7f1f3e9a01", "notificationType": "CREATED"}
).encode()


def signed_by_standardwebhooks(
    secret: str, msg_id: str, when: datetime, body: bytes
) -> dict[str, str]:
    signature = standardwebhooks.Webhook(secret).sign(msg_id, when, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }


def signed_by_svix(secret: str, msg_id: str, when: datetime, body: bytes) -> dict[str, str]:
    signature = SvixWebhook(secret).sign(msg_id, when, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }


@pytest.mark.parametrize("sign", [signed_by_standardwebhooks, signed_by_svix])
def test_reference_implementations_verify(sign) -> None:
    auth = StandardWebhooksAuth([SECRET])
    headers = sign(SECRET, "msg_2abc", datetime.now(UTC), BODY)
    assert auth.check(headers, BODY) is None
    assert auth.delivery_key(headers) == "msg_2abc"
    assert auth.check(headers, BODY + b" ") is not None  # the raw bytes are signed
    assert auth.check(dict(headers, **{"webhook-id": "msg_other"}), BODY) is not None


def test_rotation_and_several_signatures() -> None:
    now = datetime.now(UTC)
    by_old = signed_by_standardwebhooks(OTHER, "msg_1", now, BODY)
    by_new = signed_by_standardwebhooks(SECRET, "msg_1", now, BODY)
    both = dict(
        by_new,
        **{"webhook-signature": f"{by_old['webhook-signature']} {by_new['webhook-signature']}"},
    )
    assert StandardWebhooksAuth([SECRET]).check(both, BODY) is None  # any listed signature
    assert StandardWebhooksAuth([OTHER, SECRET]).check(by_old, BODY) is None  # any secret
    assert StandardWebhooksAuth([SECRET]).check(by_old, BODY) is not None


def test_stale_and_future_timestamps_are_refused() -> None:
    auth = StandardWebhooksAuth([SECRET], tolerance_s=300)
    for skew in (timedelta(minutes=-6), timedelta(minutes=6)):
        headers = signed_by_standardwebhooks(SECRET, "msg_1", datetime.now(UTC) + skew, BODY)
        assert "tolerance" in auth.check(headers, BODY)
    inside = signed_by_standardwebhooks(
        SECRET, "msg_1", datetime.now(UTC) - timedelta(minutes=4), BODY
    )
    assert auth.check(inside, BODY) is None


def test_bad_secret_is_a_configuration_error() -> None:
    with pytest.raises(SecretError):
        StandardWebhooksAuth(["whsec_not base64!"])


def test_source_allowlist() -> None:
    allow = SourceAllowlist(["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"])
    assert allow.allows("10.1.2.3") and allow.allows("2001:db8::1") and allow.allows("127.0.0.1")
    assert (
        not allow.allows("192.168.0.1") and not allow.allows(None) and not allow.allows("nonsense")
    )
    assert SourceAllowlist([]).allows("203.0.113.9")


@given(st.integers(min_value=0, max_value=80))
def test_depth_limit(depth: int) -> None:
    body = ("[" * depth + "]" * depth).encode()
    assert too_deep(body, 32) == (depth > 32)
    assert not too_deep(json.dumps({"s": "[" * depth}).encode(), 32)  # inside a string
