"""Delivery authentication, checked before the body is read."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence


class HeaderAuth:
    """Tradevest's static custom headers: one header, any of several accepted secrets.

    Several secrets let a secret be rotated: register the new one at the partner while
    both are accepted here, then drop the old one.
    """

    def __init__(self, header: str, secrets: Sequence[str]):
        self.header = header.lower()
        self.secrets = [s.encode() for s in secrets if s]

    def check(self, headers: Mapping[str, str]) -> bool:
        presented = headers.get(self.header)
        if presented is None or not self.secrets:
            return False
        given = presented.encode()
        ok = False
        for secret in self.secrets:  # no early exit: timing does not reveal which matched
            ok |= hmac.compare_digest(given, secret)
        return ok
