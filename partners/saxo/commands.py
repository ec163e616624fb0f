"""Saxo's commands: client signups and partner cash transfers, with their checks before
sending and their lookups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import redis

from partners.saxo import signups
from partners.saxo.settings import SaxoSettings
from partnersync.commandkind import CommandKind, Lookup
from partnersync.commands import CommandError
from partnersync.config import Settings
from schemas.commands import CommandRecord
from schemas.saxo.cash_transfers import PartnerCashTransferRequest
from schemas.saxo.signups import SignUpRequest


def by_external_reference(path: str) -> Lookup:
    """Saxo: list by ExternalReference (the seed: no entry → Saxo certainly has nothing)."""

    async def lookup(client: Any, record: CommandRecord) -> list[str]:
        return [
            str(item["TransactionId"])
            async for item in client.pages(path, ExternalReference=record.externalId)
            if item.get("ExternalReference") == record.externalId
        ]

    return lookup


def _check_cash_transfer(
    data: PartnerCashTransferRequest, settings: Settings, connection: redis.Redis
) -> None:
    funding = SaxoSettings.of(settings).funding_account_key
    if data.FundingCheck == "Ignore":
        if not funding:
            raise CommandError(
                "FundingCheck=Ignore needs SAXO_FUNDING_ACCOUNT_KEY to check the direction"
            )
        if data.ToAccountKey != funding:
            raise CommandError(
                "FundingCheck=Ignore is only allowed for a withdrawal towards the funding account "
                f"(ToAccountKey must be {funding})"
            )
    if data.ValueDate is not None and abs(data.ValueDate - datetime.now(UTC)) > timedelta(days=90):
        raise CommandError("ValueDate must be within 90 days of today")


def _check_signup(data: SignUpRequest, settings: Settings, connection: redis.Redis) -> None:
    """Every option-valued field against GET /cm/v2/signups/options (cached)."""
    try:
        allowed = signups.options(connection, settings)
    except (signups.SignupError, httpx.HTTPError) as exc:
        raise CommandError(f"cannot check the signup against Saxo's options: {exc}") from None
    errors = signups.option_errors(msgspec.to_builtins(data, enc_hook=str), allowed)
    if errors:
        raise CommandError("signup refused before sending:\n  " + "\n  ".join(errors))


async def _no_lookup(client: Any, record: CommandRecord) -> list[str]:
    """Saxo has no way to find a signup by an id of ours (cm.yaml has no signup list): after
    a lost answer the signup is sent again, and Saxo answers PreClientMatch if the first got
    through ("we check if the lead or client already exists", saxo-client-signups)."""
    return []


COMMANDS: tuple[CommandKind, ...] = (
    CommandKind("signup", "saxo", "signup", SignUpRequest, "/cm/v1/signups", "ClientKey",
                _no_lookup, external_id=None, validate=_check_signup,
                aliases=("SignUpId", "ClientId"), resent_codes=("PreClientMatch", "ClientMatch")),
    CommandKind("cash-transfer", "saxo", "cash-transfer", PartnerCashTransferRequest,
                "/atr/v1/partner/cashtransfers", "TransactionId",
                by_external_reference("/atr/v1/partner/cashtransfers"),
                # "ExternalReference may, but is not required to, be unique"
                # (saxo-partner-cash-transfers): Saxo books a resend again
                external_id="ExternalReference", dedupes=False, validate=_check_cash_transfer),
)  # fmt: skip
