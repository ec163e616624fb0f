"""One HTTP server that plays both partners, plus its control API under /_sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from sandbox import saxo, tradevest
from sandbox.faults import FaultError, Faults
from sandbox.webhooks import Deliverer


def create_app(
    *, step_s: float = 0.2, seed: int | None = None, session_limit: tuple[int, float] = (120, 60.0)
) -> Starlette:
    faults = Faults(seed)
    deliverer = Deliverer(faults)
    tv = tradevest.Tradevest(faults, deliverer, step_s=step_s)
    sx = saxo.Saxo(faults, step_s=step_s, session_limit=session_limit)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        # Saxo's specs take seconds to load (6 s on a slow machine): loaded on the first
        # Saxo request, they blocked the loop and timed out the Tradevest requests beside it
        loading = asyncio.get_running_loop().run_in_executor(None, sx.contract.load)
        await deliverer.start()
        try:
            yield
        finally:
            await deliverer.stop()
            with contextlib.suppress(Exception):  # a broken spec says so on first use
                await loading

    async def get_faults(request: Request) -> Response:
        return JSONResponse(faults.show())

    async def set_faults(request: Request) -> Response:
        try:
            faults.configure(json.loads(await request.body() or b"{}"))
        except (ValueError, FaultError) as exc:
            return JSONResponse({"error": "bad_faults", "detail": str(exc)}, status_code=400)
        return JSONResponse(faults.show())

    async def ledger(request: Request) -> Response:
        counts = dict(tv.create_requests)
        return JSONResponse(
            {
                "entities": tv.ledger() + sx.ledger(),
                "createRequests": counts,
                "actionRequests": dict(tv.action_requests),
                "reads": dict(tv.reads),  # Tradevest entity id -> GETs of it
                "saxoCreateRequests": dict(sx.create_requests),
                "saxoSignupRequests": sx.signup_requests,
                "saxoSessionRefused": sx.session_refused,  # 429s for a spent Session budget
                "webhooks": {
                    "sent": deliverer.sent,
                    "undelivered": len(deliverer.undelivered),
                    "answers": deliverer.answers,
                    "undocumented": deliverer.undocumented,
                },
            }
        )

    async def contract(request: Request) -> Response:
        """Saxo's specs as oracle: requests checked and refused, the sandbox's own response
        violations (any is a sandbox bug), per operation."""
        return JSONResponse(sx.contract.report())

    async def saxo_auth(request: Request) -> Response:
        """Test control of Saxo's token endpoint (sandbox/saxo/auth.py)."""
        return JSONResponse(sx.auth.control(json.loads(await request.body() or b"{}")))

    async def saxo_signup(request: Request) -> Response:
        """Test control: the signup body as the sandbox received it (Saxo has no GET for it)."""
        signup = sx.signups.get(request.path_params["ClientKey"])
        if signup is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(signup["received"])

    async def fixtures(request: Request) -> Response:
        return JSONResponse(
            {
                "tradevest": {
                    "naturalPersonId": tradevest.NATURAL_PERSON_ID,
                    "customerId": tradevest.CUSTOMER_ID,
                    "balanceAccountId": tradevest.BALANCE_ACCOUNT_ID,
                    "depositoryAccountId": tradevest.DEPOSITORY_ACCOUNT_ID,
                    "walletId": tradevest.WALLET_ID,
                    "clientId": tradevest.CLIENT_ID,
                    "clientSecret": tradevest.CLIENT_SECRET,
                },
                "saxo": {
                    "token": saxo.TOKEN,
                    "ownerClientKey": saxo.OWNER_CLIENT_KEY,
                    "fundingAccountKey": saxo.FUNDING_ACCOUNT,
                    "clientAccountKey": saxo.CLIENT_ACCOUNT,
                    "clientKey": saxo.CLIENT_KEY,
                    "usdAccountKey": saxo.USD_ACCOUNT,
                },
            }
        )

    async def force_status(request: Request) -> Response:
        """Test control: set an entity's status (any string) and notify it."""
        body = json.loads(await request.body() or b"{}")
        kind, id, status = body.get("kind"), body.get("id"), body.get("status")
        entity = tv.store.get(kind, {}).get(id) if isinstance(kind, str) else None
        if entity is None or not isinstance(status, str):
            return JSONResponse(
                {"error": "not_found", "detail": "need kind, id, status"}, status_code=404
            )
        tv.set_status(kind, entity, status)
        return JSONResponse({"status": status})

    routes = [
        Mount("/tradevest", routes=tv.routes()),
        Mount("/saxo/openapi", routes=sx.routes()),
        Route("/_sandbox/faults", get_faults, methods=["GET"]),
        Route("/_sandbox/faults", set_faults, methods=["POST"]),
        Route("/_sandbox/ledger", ledger, methods=["GET"]),
        Route("/_sandbox/fixtures", fixtures, methods=["GET"]),
        Route("/_sandbox/contract", contract, methods=["GET"]),
        Route("/_sandbox/saxo/auth", saxo_auth, methods=["POST"]),
        Route("/saxo/token", sx.auth.token, methods=["POST"]),
        Route("/saxo/authorize", sx.auth.authorize, methods=["GET"]),
        Route("/_sandbox/saxo/signups/{ClientKey:path}", saxo_signup, methods=["GET"]),
        Route("/_sandbox/tradevest/status", force_status, methods=["POST"]),
        Route("/_sandbox/saxo/ens", sx.ens_control, methods=["POST"]),
        Route("/_sandbox/saxo/transactions", sx.transactions_control, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def app_from_env() -> Starlette:
    """uvicorn factory: SANDBOX_STEP_MS sets the pause between asynchronous status steps."""
    step_ms = int(os.environ.get("SANDBOX_STEP_MS", "200"))
    seed = os.environ.get("SANDBOX_SEED")
    # Saxo's Session limit as requests/seconds (default the documented 120 a minute)
    requests, _, seconds = os.environ.get("SANDBOX_SAXO_SESSION_LIMIT", "120/60").partition("/")
    return create_app(
        step_s=step_ms / 1000,
        seed=int(seed) if seed else None,
        session_limit=(int(requests), float(seconds)),
    )
