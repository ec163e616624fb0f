"""Webhook authentication schemes a partner's webhooks may use (partnersync/webhooks.py):
a static header, or Standard Webhooks signatures. Every comparison is constant-time."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence


class HeaderAuth:
    """A static custom header (Tradevest's): one header, any of several accepted secrets.

    Several secrets let a secret be rotated: register the new one at the partner while
    both are accepted here, then drop the old one. Checked before the body is read.
    """

    needs_body = False

    def __init__(self, header: str, secrets: Sequence[str]):
        self.header = header.lower()
        self.credentials = (self.header,)
        self.secrets = [s.encode() for s in secrets if s]

    def check(self, headers: Mapping[str, str], body: bytes = b"") -> str | None:
        """None when authentic, else the reason."""
        presented = headers.get(self.header)
        if presented is None or not self.secrets:
            return f"missing or wrong {self.header} header"
        given = presented.encode()
        ok = False
        for secret in self.secrets:  # no early exit: timing does not reveal which matched
            ok |= hmac.compare_digest(given, secret)
        return None if ok else f"missing or wrong {self.header} header"

    def delivery_key(self, headers: Mapping[str, str]) -> str | None:
        return None  # no event id in a static header: dedupe on the content


class SecretError(ValueError):
    pass


def signing_key(secret: str) -> bytes:
    """`whsec_<base64>` → the key bytes (a bare base64 string is accepted too)."""
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise SecretError("a standard-webhooks secret must be whsec_<base64>") from None


class StandardWebhooksAuth:
    """Standard Webhooks 1.0 (Svix and other gateways that re-sign deliveries):
    HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{raw body}`, signatures
    `v1,<base64>` (space-separated, any may match), timestamp within ±tolerance."""

    needs_body = True
    credentials = ()  # a signature proves, it does not open: kept

    def __init__(self, secrets: Sequence[str], tolerance_s: float = 300.0):
        self.keys = [signing_key(s) for s in secrets if s]
        self.tolerance_s = tolerance_s

    def check(self, headers: Mapping[str, str], body: bytes) -> str | None:
        msg_id = headers.get("webhook-id")
        stamp = headers.get("webhook-timestamp")
        signatures = headers.get("webhook-signature")
        if not msg_id or not stamp or not signatures or not self.keys:
            return "missing webhook-id, webhook-timestamp or webhook-signature"
        try:
            sent = int(stamp)
        except ValueError:
            return "webhook-timestamp is not a unix time"
        if abs(time.time() - sent) > self.tolerance_s:
            return "webhook-timestamp outside the tolerance (replayed or clock skew)"
        content = f"{msg_id}.{stamp}.".encode() + body
        expected = [
            base64.b64encode(hmac.new(k, content, hashlib.sha256).digest()) for k in self.keys
        ]
        ok = False
        for entry in signatures.split():
            version, _, given = entry.partition(",")
            if version != "v1":
                continue
            for candidate in expected:  # no early exit
                ok |= hmac.compare_digest(given.encode(), candidate)
        return None if ok else "no webhook-signature matches"

    def delivery_key(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("webhook-id")  # the same across retries: the idempotency key
