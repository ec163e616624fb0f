"""The dedupe digest: one fixed-size id for whatever identifies an event, any partner."""

from __future__ import annotations

import hashlib


def digest(*parts: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode())
        h.update(b"\x1f")
    return h.hexdigest()
