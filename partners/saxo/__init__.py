"""Saxo OpenAPI: polled (no webhooks), ENS activities, signups, partner cash transfers.

Kinds (kinds.py), commands and their checks (commands.py), the client and its token
providers (client.py, auth.py), the ENS poller (ens.py), the unsettled-amounts report
(unsettled.py), the bookings reconciliation (transactions.py), signup calls (signups.py),
its console page (console.py, templates/), its commands (cli/).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import redis

from partners.saxo import auth, commands, console, ens, kinds, metrics, unsettled
from partners.saxo import cli as saxo_cli
from partners.saxo import keys as saxo_keys
from partners.saxo.client import SaxoClient, limits
from partners.saxo.settings import SaxoSettings
from partnersync.config import Settings
from partnersync.keys import split_entity_key
from partnersync.kinds import Kind
from partnersync.partner import Partner, Task
from partnersync.ratelimit import Limiter
from schemas.saxo import activities

if TYPE_CHECKING:
    from partnersync.context import Context


def _client(settings: Settings, http: httpx.AsyncClient, connection: redis.Redis) -> SaxoClient:
    limiter = Limiter(connection, SaxoClient.partner, limits(SaxoSettings.of(settings).rate_limits))
    return SaxoClient(settings, http, auth.provider(settings, connection), limiter)


def _index(
    write: redis.client.Pipeline, kind: Kind, key: str, entity: Any, settings: Settings
) -> None:
    """A cash transfer's positions, so an ENS AccountFundings activity finds its transfer
    (`ens.cash_transfer_of`), for PARTNERSYNC_DLQ_RETENTION after the day it was seen."""
    if kind.kind != "cash-transfer":
        return
    day = int(time.time() // 86_400)
    transaction = split_entity_key(key)[2]
    for position in (entity.FromAccountPositionId, entity.ToAccountPositionId):
        if position:
            where = saxo_keys.positions(day, position)
            write.hset(where, position, transaction)
            write.expireat(where, (day + 1) * 86_400 + settings.dlq_retention)


def _tasks(ctx: Context) -> list[Task]:
    s = SaxoSettings.of(ctx.settings)
    return [
        ("ens", s.ens_interval_s, lambda: ctx.run(ens.poll(ctx))),
        ("unsettled-report", s.unsettled_interval_s, lambda: ctx.run(unsettled.refresh(ctx))),
    ]


PARTNER = Partner(
    dictionaries=Path(__file__).parent / "dictionaries",
    name="saxo",
    base_url=lambda settings: SaxoSettings.of(settings).base_url,
    client=_client,
    kinds=kinds.KINDS,
    commands=commands.COMMANDS,
    notes=activities.read,
    index=_index,
    tasks=_tasks,
    metrics=metrics.collect,
    external_id_name="ExternalReference",
    settings=SaxoSettings,
    console_pages=console.PAGES,
    cli=saxo_cli.add,
    attention_note=console.pending_reasons,
    sandbox_env=lambda sandbox: {
        "SAXO_BASE_URL": sandbox + "/saxo/openapi",
        "SAXO_TOKEN": "sandbox",
        "SAXO_CLIENT_KEY": "WLC-owner-key==",  # the sandbox's white-label owner
        "SAXO_FUNDING_ACCOUNT_KEY": "FUND-EUR-key==",
    },
)
