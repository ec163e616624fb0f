"""Register the receiver's routes at Tradevest (POST /webhooks, one per event type)."""

from __future__ import annotations

from urllib.parse import urlparse

import httpx

from partners.tradevest.client import TradevestClient
from partners.tradevest.settings import TradevestSettings
from partnersync.config import Settings
from partnersync.webhooks import Drift, RegistrationError
from schemas.tradevest.events import BY_NAME, to_register

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


__all__ = ["Drift", "RegistrationError", "check_base", "register", "route_url"]


def route_url(base: str, path: str) -> str:
    return f"{base.rstrip('/')}/webhooks/tradevest/{path}"


def check_base(base: str, settings: Settings) -> None:
    """Tradevest requires HTTPS; plain http is allowed only when talking to a local sandbox."""
    url = urlparse(base)
    if url.scheme == "https":
        return
    tradevest = TradevestSettings.of(settings)
    partner = urlparse(tradevest.base_url).hostname
    if url.scheme == "http" and partner in _LOOPBACK:
        return
    raise RegistrationError(f"--url {base!r}: Tradevest requires an https:// URL")


async def register(settings: Settings, base: str, *, check: bool = False) -> list[Drift]:
    check_base(base, settings)
    tradevest = TradevestSettings.of(settings)
    unknown = [n for n in tradevest.extra_event_types if n not in BY_NAME]
    if unknown:
        raise RegistrationError(
            f"TRADEVEST_EXTRA_EVENT_TYPES: unknown event type(s) {', '.join(unknown)}"
        )
    if not tradevest.webhook_secrets:
        raise RegistrationError("TRADEVEST_WEBHOOK_SECRETS is empty: nothing to register")
    header = {tradevest.webhook_header: tradevest.webhook_secrets[0]}
    async with httpx.AsyncClient(timeout=settings.http_timeout_s) as http:
        client = TradevestClient(settings, http)
        current = {w.get("eventType"): w for w in await client.list_webhooks()}
        report: list[Drift] = []
        for event in to_register(tradevest.extra_event_types):
            want = route_url(base, event.path)
            have = current.get(event.name)
            if have is None:
                problem = "missing"
            elif have.get("url") != want:
                problem = "url"
            elif {h.get("name"): h.get("value") for h in have.get("headers", [])} != header:
                problem = "headers"
            else:
                problem = "ok"
            report.append(Drift(event.name, problem, want))
            if problem != "ok" and not check:
                await client.register_webhook(event.name, want, header)
        return report
