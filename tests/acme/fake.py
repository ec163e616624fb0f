"""Acme's fake API (the tests' sandbox for tests/acme): payments by id and by externalId,
created once per externalId (409 on a second), status set by the test."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def app() -> Starlette:
    payments: dict[str, dict[str, str]] = {}
    ids = itertools.count(1)

    def now() -> str:
        return datetime.now(UTC).isoformat()

    async def create(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != "Bearer acme-token":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        body = await request.json()
        external = body.get("externalId")
        if external and any(p.get("externalId") == external for p in payments.values()):
            return JSONResponse({"error": "duplicate externalId"}, status_code=409)
        payment = {"id": f"pay-{next(ids)}", "status": "CREATED", "amount": body["amount"],
                   "externalId": external, "modifiedOn": now()}  # fmt: skip
        payments[payment["id"]] = payment
        return JSONResponse({"id": payment["id"]}, status_code=201)

    async def listing(request: Request) -> JSONResponse:
        external = request.query_params.get("externalId")
        return JSONResponse([p for p in payments.values() if p.get("externalId") == external])

    async def one(request: Request) -> JSONResponse:
        payment = payments.get(request.path_params["id"])
        if payment is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(payment)

    async def settle(request: Request) -> JSONResponse:  # test control
        payment = payments[request.path_params["id"]]
        payment.update(status=(await request.json())["status"], modifiedOn=now())
        return JSONResponse(payment)

    return Starlette(
        routes=[
            Route("/acme/payments", create, methods=["POST"]),
            Route("/acme/payments", listing, methods=["GET"]),
            Route("/acme/payments/{id}", one, methods=["GET"]),
            Route("/acme/_control/payments/{id}", settle, methods=["POST"]),
        ]
    )
