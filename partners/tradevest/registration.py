"""Register the receiver's routes at Tradevest (POST /webhooks, one per event type), or
remove them (DELETE /webhooks/{eventType}); tradevest-api.md §2."""

from __future__ import annotations

from urllib.parse import urlparse

import httpx

from partners.tradevest.client import TradevestClient
from partners.tradevest.settings import TradevestSettings
from partnersync.config import Settings
from partnersync.webhooks import Drift, Registration, RegistrationError
from schemas.tradevest.events import BY_NAME, EventType, to_register

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


def chosen(types: tuple[str, ...], extra: tuple[str, ...]) -> list[EventType]:
    """The event types to act on: those named (each must be one Tradevest has), else the
    documented 24 and the extras asked for."""
    unknown = [n for n in (*types, *extra) if n not in BY_NAME]
    if unknown:
        raise RegistrationError(
            f"unknown event type(s) {', '.join(unknown)}: Tradevest's are "
            "partnersync's schemas/tradevest/events.py (EventTypeEnum)"
        )
    return [BY_NAME[n] for n in dict.fromkeys(types)] if types else to_register(extra)


async def register(settings: Settings, asked: Registration) -> list[Drift]:
    check_base(asked.url, settings)
    tradevest = TradevestSettings.of(settings)
    events = chosen(asked.types, tradevest.extra_event_types)
    if not tradevest.webhook_secrets and not asked.remove:
        raise RegistrationError("TRADEVEST_WEBHOOK_SECRETS is empty: nothing to register")
    header = {tradevest.webhook_header: tradevest.webhook_secrets[0]} if not asked.remove else {}
    async with httpx.AsyncClient(timeout=settings.http_timeout_s) as http:
        client = TradevestClient(settings, http)
        current = {w.get("eventType"): w for w in await client.list_webhooks()}
        report: list[Drift] = []
        for event in events:
            want = route_url(asked.url, event.path)
            have = current.get(event.name)
            if asked.remove:
                problem = "absent" if have is None else "registered"
                if problem == "registered" and not asked.check:
                    await client.delete_webhook(event.name)
            else:
                problem = _drift(have, want, header)
                if problem != "ok" and not asked.check:
                    await client.register_webhook(event.name, want, header)
            report.append(Drift(event.name, problem, want))
        return report


def _drift(have: dict | None, want: str, header: dict[str, str]) -> str:
    if have is None:
        return "missing"
    if have.get("url") != want:
        return "url"
    if {h.get("name"): h.get("value") for h in have.get("headers", [])} != header:
        return "headers"
    return "ok"
