"""The bench's baselines and stubs, served by uvicorn like the receiver.

- `bare`: a Starlette endpoint that only reads the body and answers 204 — what the
  receiver's throughput is compared with.
- `stub`: a Tradevest stand-in that answers instantly (token, GET /transfers/{id}), so the
  reconcile benchmark measures partnersync, not the partner; it counts GETs per id.
"""

from __future__ import annotations

from collections import Counter

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def _bare(request: Request) -> Response:
    await request.body()
    return Response(status_code=204)


bare = Starlette(routes=[Route("/webhooks/tradevest/{event}", _bare, methods=["POST"])])

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


def noop() -> None:
    """The baseline RQ job: does nothing."""
