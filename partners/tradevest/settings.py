"""Tradevest's settings (TRADEVEST_*), read by partnersync/config.py like every setting."""

from __future__ import annotations

from typing import Annotated

from partnersync.config import ConfigError, Env, PartnerSettings
from schemas.sensitive import Sensitive


class TradevestSettings(PartnerSettings, frozen=True, kw_only=True):
    base_url: Annotated[str, Env("TRADEVEST_BASE_URL", "Tradevest API base URL", url=True)] = (
        "http://127.0.0.1:8900/tradevest"
    )
    auth_url: Annotated[
        str | None,
        Env(
            "TRADEVEST_AUTH_URL",
            "OAuth2 token URL (/oauth2/token or /connect/token); unset: TRADEVEST_BASE_URL + /oauth2/token",
            url=True,
        ),
    ] = None
    client_id: Annotated[str, Env("TRADEVEST_CLIENT_ID", "OAuth2 client id")] = "sandbox"
    client_secret: Annotated[
        str, Sensitive, Env("TRADEVEST_CLIENT_SECRET", "OAuth2 client secret")
    ] = "sandbox"
    scope: Annotated[str | None, Env("TRADEVEST_SCOPE", "OAuth2 scope, sent only when set")] = None
    webhook_auth: Annotated[
        str,
        Env(
            "TRADEVEST_WEBHOOK_AUTH",
            "delivery authentication: header (Tradevest's static headers) or standard-webhooks (HMAC, via a re-signing gateway)",
            choices=("header", "standard-webhooks"),
        ),
    ] = "header"
    webhook_header: Annotated[
        str, Env("TRADEVEST_WEBHOOK_HEADER", "header carrying the webhook secret")
    ] = "api-key"
    webhook_secrets: Annotated[
        tuple[str, ...],
        Sensitive,
        Env("TRADEVEST_WEBHOOK_SECRETS", "accepted webhook secrets, comma-separated (rotation)"),
    ] = ()
    extra_event_types: Annotated[
        tuple[str, ...],
        Env(
            "TRADEVEST_EXTRA_EVENT_TYPES",
            "event types beyond Tradevest's documented 24 to register, comma-separated (SAVINGS_PLANS_NOTIFICATION, TOKENIZED_ASSET_ORDER_NOTIFICATION: WAWEX)",
        ),
    ] = ()

    @property
    def token_url(self) -> str:
        return self.auth_url or self.base_url.rstrip("/") + "/oauth2/token"

    def check(self) -> None:
        if not self.webhook_header.strip():
            raise ConfigError("TRADEVEST_WEBHOOK_HEADER is empty")
