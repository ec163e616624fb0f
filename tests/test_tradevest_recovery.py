"""Missed-webhook recovery reads Tradevest's recovery endpoints leniently (tradevest-api.md
§2: only `eventType` of a `/webhooks-missing` item was seen; §7 item 4: the rest is open):
the notification is taken from `payload`, another wrapper field, a JSON string or the item
itself; an item not understood is logged, counted and dead-lettered with its raw text, once
— never skipped without a trace (#37 item 2)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cli.redisserver import RedisServer
from partners.tradevest import recovery
from partnersync import config, context, dlq, keys
from tests.conftest import base_env, serving

T1, T2, T3, T4 = (str(uuid.uuid4()) for _ in range(4))


def note(transfer_id: str, status: str = "PENDING") -> dict[str, Any]:
    return {"transferId": transfer_id, "status": status, "notificationType": "UPDATED",
            "modifiedOn": "2026-12-01T10:00:00.000Z"}  # fmt: skip


MISSING: list[Any] = [
    {"eventType": "TRANSFER_NOTIFICATION", "payload": note(T1)},  # the sandbox's reading
    {"eventType": "TRANSFER_NOTIFICATION", **note(T2)},  # flat: the item is the notification
    {"eventType": "CUSTOMER_NOTIFICATION"},  # only what the docs showed: nothing to take in
    {"eventType": "BRAND_NEW_NOTIFICATION", "payload": {"fooId": "1"}},  # a type we lack
    {"payload": note(T4)},  # no eventType
    "TRANSFER_NOTIFICATION",  # not an object
]
UNDELIVERED: list[Any] = [
    {"eventType": "TRANSFER_NOTIFICATION", "notification": json.dumps(note(T3))},  # as text
    {
        "eventType": "TRANSFER_NOTIFICATION",
        "payload": {"status": "PENDING", "notificationType": "UPDATED"},
    },  # names no id
]


@pytest.fixture
def tradevest_url() -> Iterator[str]:
    async def token(request: Request) -> Response:
        return JSONResponse({"access_token": "t", "expires_in": 3600, "token_type": "Bearer"})

    async def missing(request: Request) -> Response:
        return JSONResponse(MISSING)

    async def undelivered(request: Request) -> Response:
        return JSONResponse({"data": UNDELIVERED, "pagination": {"cursor": None, "limit": 100}})

    app = Starlette(routes=[
        Route("/oauth2/token", token, methods=["POST"]),
        Route("/webhooks-missing", missing), Route("/undelivered-webhooks", undelivered),
    ])  # fmt: skip
    with serving(app, "the Tradevest stand-in") as url:
        yield url


def test_recovery_takes_in_what_it_can_read_and_dead_letters_the_rest(
    redis_server: RedisServer, r: redis.Redis, tradevest_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    env = base_env(redis_server.url, TRADEVEST_BASE_URL=tradevest_url,
                   TRADEVEST_AUTH_URL=tradevest_url + "/oauth2/token")  # fmt: skip
    ctx = context.Context(config.load(env, state_fallback=False), r)
    try:
        recovered = ctx.run(recovery.missed_notifications(ctx))
        again = ctx.run(recovery.missed_notifications(ctx))
    finally:
        ctx.close()
    assert recovered == 3 and again == 0  # T1, T2, T3; the second sweep finds duplicates
    for transfer_id in (T1, T2, T3):
        assert r.zscore(keys.DIRTY, f"tradevest:transfer:{transfer_id}") is not None
    assert r.zscore(keys.DIRTY, f"tradevest:transfer:{T4}") is None

    letters = dlq.all_letters(r)
    assert len(letters) == 5, [letter.error for letter in letters]  # once each, not per sweep
    assert {letter.reason for letter in letters} == {"recovery"}
    raw = {e.body for letter in letters for e in letter.events}
    assert json.dumps({"eventType": "CUSTOMER_NOTIFICATION"}, separators=(",", ":")) in raw
    assert json.dumps("TRANSFER_NOTIFICATION") in raw
    errors = " | ".join(letter.error for letter in letters)
    for reason in ("names no notification", "unknown event type", "no eventType",
                   "not a JSON object", "transferId"):  # fmt: skip
        assert reason in errors, errors
    counters = {k.decode(): int(v) for k, v in r.hgetall(keys.COUNTERS).items()}
    unreadable = {k: v for k, v in counters.items() if k.startswith("recovered-unreadable:")}
    assert sum(unreadable.values()) == 10, counters  # counted on every sweep that saw them
    warned = [rec for rec in caplog.records if rec.getMessage() == "recovered item not understood"]
    assert len(warned) == 10
    assert all(T4 not in rec.getMessage() and T4 not in str(rec.__dict__) for rec in warned)
