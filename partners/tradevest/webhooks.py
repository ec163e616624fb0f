"""Tradevest's webhooks as the receiver takes them (partnersync/webhooks.py).

Routes `/webhooks/tradevest/{event}` for its 24 documented event types (schemas/
tradevest/events.py); authentication by its static custom header, or by Standard Webhooks
signatures from a re-signing gateway (TRADEVEST_WEBHOOK_AUTH); the body decoded into
the event's notification Struct, which names the entities to reconcile and the dedupe
digest (schemas/tradevest/intake.py).
"""

from __future__ import annotations

import logging

from partners.tradevest.registration import register
from partners.tradevest.settings import TradevestSettings
from partnersync import keys
from partnersync.config import Settings
from partnersync.webhookauth import HeaderAuth, StandardWebhooksAuth
from partnersync.webhooks import Authenticator, Prepared, WebhookEvent, Webhooks
from schemas.tradevest import intake
from schemas.tradevest.events import EVENT_TYPES, PARTNER, EventType

log = logging.getLogger("partnersync.tradevest")


def authenticator(settings: Settings) -> Authenticator:
    tradevest = TradevestSettings.of(settings)
    if not tradevest.webhook_secrets:
        log.warning("TRADEVEST_WEBHOOK_SECRETS is empty: every delivery will be refused (401)")
    if tradevest.webhook_auth == "standard-webhooks":
        return StandardWebhooksAuth(tradevest.webhook_secrets, settings.webhook_tolerance_s)
    return HeaderAuth(tradevest.webhook_header, tradevest.webhook_secrets)


def prepare(event: WebhookEvent | None, event_type: str, body: bytes, most: int) -> Prepared:
    typed = event if isinstance(event, EventType) else None
    ids, dedupe = intake.prepare(typed, event_type, body, most)
    kind = typed.kind if typed else None
    return Prepared([keys.entity_key(PARTNER, kind, i) for i in ids] if kind else [], dedupe)


WEBHOOKS = Webhooks(
    events=EVENT_TYPES,
    authenticator=authenticator,
    prepare=prepare,
    # TODO(#37): Tradevest documents 200 OK (platform-api-overview §3); 204 until then
    status=204,
    register=lambda settings, url, check: register(settings, url, check=check),
    secrets_variable="TRADEVEST_WEBHOOK_SECRETS",
)
