"""Which source addresses may deliver webhooks (PARTNERSYNC_ALLOWED_CIDRS)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence


class SourceAllowlist:
    def __init__(self, cidrs: Sequence[str]):
        self.networks = [ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip()]

    def allows(self, host: str | None) -> bool:
        if not self.networks:
            return True
        if host is None:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in n for n in self.networks)
