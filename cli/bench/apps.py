"""The bench's baselines and stubs, served by uvicorn like the receiver.

- `raw`: an ASGI callable that reads the body and answers 200 without a body — the
  server's ceiling.
- `bare`: a Starlette endpoint that only reads the body and answers 200 without a body
  (as the receiver answers Tradevest) — what the receiver's throughput is compared with.
- `peer` (factory): what a team would write instead of partnersync — a Starlette endpoint
  that checks the header secret, decodes the JSON and calls RQ's `Queue.enqueue` once per
  event, on the same Redis.
- `stub`: a Tradevest stand-in that answers instantly (token, GET /transfers/{id}), so the
  reconcile benchmark measures partnersync, not the partner; it counts GETs per id.
- `endpoints`: a team's services receiving outbound webhooks at `/ep/{n}`: answers 204 at
  once and keeps, per delivery, its endpoint, webhook-id and arrival (ms, wall clock);
  `GET /_got` returns them (and forgets them).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

import redis
from rq import Queue
from rq.serializers import JSONSerializer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def _bare(request: Request) -> Response:
    await request.body()
    return Response(status_code=200)


bare = Starlette(routes=[Route("/webhooks/tradevest/{event}", _bare, methods=["POST"])])


async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
    )
    await send({"type": "http.response.body", "body": b""})


def peer() -> Starlette:
    """The RQ peer (uvicorn --factory): REDIS_URL and TRADEVEST_WEBHOOK_SECRETS as the
    receiver reads them."""
    queue = Queue(
        "bench-peer",
        connection=redis.Redis.from_url(os.environ["REDIS_URL"]),
        serializer=JSONSerializer,
    )
    secret = os.environ["TRADEVEST_WEBHOOK_SECRETS"].split(",")[0]

    async def deliver(request: Request) -> Response:
        if request.headers.get("api-key") != secret:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            event = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "bad_request"}, status_code=400)
        queue.enqueue("cli.bench.apps.noop_event", request.path_params["event"], event)
        return Response(status_code=200)

    return Starlette(routes=[Route("/webhooks/tradevest/{event}", deliver, methods=["POST"])])


_gets: Counter[str] = Counter()
_TRANSFER = (
    b'{"transfer":{"transferId":"%s","transferStatus":"PROCESSED",'
    b'"modifiedOn":"2026-01-01T00:00:01Z","amount":1.0,"currency":"EUR","externalId":"bench-%s"}}'
)


async def _token(request: Request) -> Response:
    return JSONResponse({"access_token": "bench", "token_type": "Bearer", "expires_in": 3600})


async def _transfer(request: Request) -> Response:
    transfer_id = request.path_params["id"]
    _gets[transfer_id] += 1
    body = _TRANSFER % (transfer_id.encode(), transfer_id.encode())
    return Response(body, media_type="application/json")


async def _counts(request: Request) -> Response:
    return JSONResponse({"total": sum(_gets.values()), "ids": len(_gets), "max": max(_gets.values(), default=0),
                         "by_id": dict(_gets) if request.query_params.get("all") else {}})  # fmt: skip


stub = Starlette(
    routes=[
        Route("/tradevest/oauth2/token", _token, methods=["POST"]),
        Route("/tradevest/transfers/{id}", _transfer, methods=["GET"]),
        Route("/_stub/gets", _counts, methods=["GET"]),
    ]
)


_arrivals: list[tuple[str, str, int]] = []


async def _endpoint(request: Request) -> Response:
    await request.body()
    _arrivals.append((request.path_params["n"], request.headers.get("webhook-id", ""),
                      time.time_ns() // 1_000_000))  # fmt: skip
    return Response(status_code=204)


async def _got(request: Request) -> Response:
    got = list(_arrivals)
    if request.query_params.get("clear"):
        _arrivals.clear()
    return JSONResponse(got)


endpoints = Starlette(
    routes=[
        Route("/ep/{n}", _endpoint, methods=["POST"]),
        Route("/_got", _got, methods=["GET"]),
    ]
)


def noop() -> None:
    """The baseline RQ job: does nothing."""


def noop_event(event_type: str, event: dict[str, Any]) -> None:
    """The peer's job (never run by the bench: only enqueued)."""
