"""Tradevest: webhooks in, REST out (OAuth2 client credentials).

Kinds (kinds.py), commands and their lookups (commands.py), the client (client.py), the
missed-webhook and transaction sweeps (sweeper.py), registration (registration.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import redis

from partners.tradevest import backfill, cli, commands, kinds, notes, recovery, sweeper
from partners.tradevest.client import TradevestClient
from partners.tradevest.settings import TradevestSettings
from partners.tradevest.webhooks import WEBHOOKS
from partnersync.config import Settings
from partnersync.partner import Partner, Task

if TYPE_CHECKING:
    from partnersync.context import Context


def _client(
    settings: Settings, http: httpx.AsyncClient, connection: redis.Redis
) -> TradevestClient:
    return TradevestClient(settings, http)


def _tasks(ctx: Context) -> list[Task]:
    every = ctx.settings.sweep_interval_s
    return [
        ("missed-notifications", every, lambda: ctx.run(recovery.missed_notifications(ctx))),
        ("transactions", every, lambda: ctx.run(sweeper.transactions(ctx))),
    ]


PARTNER = Partner(
    dictionaries=Path(__file__).parent / "dictionaries",
    name="tradevest",
    base_url=lambda settings: TradevestSettings.of(settings).base_url,
    client=_client,
    kinds=kinds.KINDS,
    commands=commands.COMMANDS,
    notes=notes.read,
    index=notes.index,
    tasks=_tasks,
    settings=TradevestSettings,
    webhooks=WEBHOOKS,
    cli=cli.add,
    listings=backfill.LISTINGS,
    sandbox_env=lambda sandbox: {
        "TRADEVEST_BASE_URL": sandbox + "/tradevest",
        "TRADEVEST_AUTH_URL": sandbox + "/tradevest/oauth2/token",
    },
)
