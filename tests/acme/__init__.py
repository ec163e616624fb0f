"""Acme, a third partner that lives only in the tests: the proof that a partner is one
package. It pushes Standard-Webhooks-signed webhooks (`payment.updated`), serves its
payments by GET and creates them by POST with an externalId it refuses twice (409); its
settings are ACME_*; it adds a console page (templates/). Nothing outside this package (and the tests) knows it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import msgspec
import redis

from partnersync import store
from partnersync.client import PartnerClient
from partnersync.commandkind import CommandKind
from partnersync.config import Env, PartnerSettings, Settings
from partnersync.kinds import Kind
from partnersync.partner import ConsolePage, Partner
from partnersync.webhookauth import StandardWebhooksAuth
from partnersync.webhooks import Authenticator, Prepared, WebhookEvent, Webhooks
from schemas.dedupe import digest
from schemas.intake import Unusable
from schemas.lifecycle import Lifecycle
from schemas.sensitive import Sensitive

LIFECYCLE = Lifecycle("CREATED", {"CREATED": ("PAID", "FAILED")})


class AcmeSettings(PartnerSettings, frozen=True, kw_only=True):
    base_url: Annotated[str, Env("ACME_BASE_URL", "Acme API base URL", url=True)] = (
        "http://127.0.0.1:1/acme"
    )
    webhook_secret: Annotated[
        str | None, Sensitive, Env("ACME_WEBHOOK_SECRET", "Acme's webhook signing secret")
    ] = None


class Payment(msgspec.Struct, kw_only=True):  # GET /payments/{id}
    id: str
    status: str
    amount: str
    externalId: str | None = None
    modifiedOn: datetime | None = None


class PaymentRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    amount: str
    externalId: str | None = None


class Notification(msgspec.Struct, kw_only=True):  # the webhook body
    id: str
    status: str


class Event(msgspec.Struct, frozen=True):
    name: str


EVENTS = {"payment.updated": Event("PAYMENT_UPDATED")}
_notification = msgspec.json.Decoder(Notification)


class AcmeClient(PartnerClient):
    partner = "acme"

    async def token(self, *, refresh: bool = False) -> str:
        return "acme-token"

    async def pages(self, path: str, **params: Any) -> Any:
        for item in msgspec.json.decode(await self.get(path, **params), type=list[dict]):
            yield item


def _client(settings: Settings, http: httpx.AsyncClient, connection: redis.Redis) -> AcmeClient:
    return AcmeClient(AcmeSettings.of(settings).base_url, http)


def _authenticator(settings: Settings) -> Authenticator:
    secret = AcmeSettings.of(settings).webhook_secret
    return StandardWebhooksAuth([secret] if secret else [], settings.webhook_tolerance_s)


def _prepare(event: WebhookEvent | None, event_type: str, body: bytes, most: int) -> Prepared:
    if event is None:
        raise Unusable("unknown_event", f"Acme sends no {event_type}")
    try:
        note = _notification.decode(body)
    except msgspec.DecodeError as exc:
        raise Unusable("invalid_body", str(exc)) from None
    return Prepared([f"acme:payment:{note.id}"], digest(event_type, note.id, note.status))


async def _by_external_id(client: AcmeClient, record: Any) -> list[str]:
    return [p["id"] async for p in client.pages("/payments", externalId=record.externalId)]


def _payments_page(connection: redis.Redis) -> dict[str, Any]:
    return {"paid": store.counts(connection).get(("acme", "payment", "PAID"), 0)}


PARTNER = Partner(
    name="acme",
    base_url=lambda settings: AcmeSettings.of(settings).base_url,
    client=_client,
    kinds=(Kind("acme", "payment", LIFECYCLE, Payment, "/payments/{id}"),),
    commands=(
        CommandKind(
            "payment", "acme", "payment", PaymentRequest, "/payments", "id", _by_external_id
        ),
    ),  # fmt: skip
    settings=AcmeSettings,
    console_pages=(
        ConsolePage(
            "payments",
            "Acme payments",
            Path(__file__).parent / "templates/payments.html",
            _payments_page,
        ),
    ),  # fmt: skip
    webhooks=Webhooks(
        events=EVENTS,
        authenticator=_authenticator,
        prepare=_prepare,
        status=200,
        body=b'{"received":true}',
    ),  # fmt: skip
)
