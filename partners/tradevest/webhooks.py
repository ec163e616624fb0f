"""Tradevest's webhooks as the receiver takes them (partnersync/webhooks.py).

Routes `/webhooks/tradevest/{event}` for its 24 documented event types (schemas/
tradevest/events.py); authentication by its static custom header, or by Standard Webhooks
signatures from a re-signing gateway (TRADEVEST_WEBHOOK_AUTH); the body decoded into
the event's notification Struct, which names the entities to reconcile and the dedupe
digest (schemas/tradevest/intake.py). Answered as platform-api-overview §3 documents the
partner endpoint's answer: 200 OK, or an ErrorMessage body (tradevest-api.md §5) with the
refusal's status.
"""

from __future__ import annotations

import logging
import uuid

import msgspec

from partners.tradevest.registration import register
from partners.tradevest.settings import TradevestSettings
from partnersync import keys
from partnersync.config import Settings
from partnersync.webhookauth import HeaderAuth, StandardWebhooksAuth
from partnersync.webhooks import Authenticator, Prepared, WebhookEvent, Webhooks
from schemas.tradevest import intake
from schemas.tradevest.errors import ErrorMessage
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


def problem(status: int, error: str, detail: str) -> bytes:
    """A refusal as an ErrorMessage: the receiver's reason is its errorCode, a fresh
    requestId (responseType "ERROR" as the sandbox's errors carry it: inferred)."""
    message = ErrorMessage(
        message=detail, responseType="ERROR", requestId=str(uuid.uuid4()), errorCode=error
    )
    return msgspec.json.encode(message)


WEBHOOKS = Webhooks(
    events=EVENT_TYPES,
    authenticator=authenticator,
    prepare=prepare,
    status=200,  # platform-api-overview §3: "200 OK"
    problem=problem,
    register=register,
    secrets_variable="TRADEVEST_WEBHOOK_SECRETS",
)
