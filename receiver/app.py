"""The receiver: Starlette routes for partner webhooks, health and readiness."""

from __future__ import annotations

import contextlib
import logging
import re

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from partnersync import keys
from partnersync.config import Settings, redis_url
from receiver.auth import HeaderAuth
from receiver.intake import Intake
from receiver.problems import json_response, problem
from schemas.tradevest.events import EVENT_TYPES, PARTNER, digest

log = logging.getLogger("partnersync.receiver")

_EVENT_PATH = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_UNAVAILABLE = {"Retry-After": "5"}


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing it as soon as it exceeds `limit` (before reading it all)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def connect(settings: Settings) -> aioredis.Redis:
    # Fail fast when Redis is down (the sender gets a 503 and redelivers); one retry
    # re-establishes a connection that a Redis restart broke.
    return aioredis.Redis.from_url(
        redis_url(settings),
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        health_check_interval=0,
    )


def create_app(settings: Settings) -> Starlette:
    auth = HeaderAuth(settings.tradevest_webhook_header, settings.tradevest_webhook_secrets)
    if not auth.secrets:
        log.warning("TRADEVEST_WEBHOOK_SECRETS is empty: every delivery will be refused (401)")
    state: dict[str, object] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        connection = connect(settings)
        state["redis"] = connection
        state["intake"] = Intake(connection, settings)
        try:
            yield
        finally:
            await connection.aclose()

    async def tradevest_webhook(request: Request) -> Response:
        path = request.path_params["event"]
        if not _EVENT_PATH.match(path):
            return problem(404, "unknown_route", "no such webhook route")
        if not auth.check(request.headers):
            return problem(401, "unauthorized", f"missing or wrong {auth.header} header")
        if not _is_json(request.headers.get("content-type")):
            return problem(415, "unsupported_media_type", "body must be application/json")
        try:
            body = await read_body(request, settings.max_body)
        except BodyTooLarge:
            return problem(413, "payload_too_large", f"body exceeds {settings.max_body} bytes")
        event = EVENT_TYPES.get(path)
        event_type = event.name if event else path.upper().replace("-", "_")
        entities: list[str] = []
        if event is None:
            # Unknown event type: archived and answered, but parked (no entity to reconcile).
            try:
                msgspec.json.decode(body, type=dict)
            except msgspec.DecodeError as exc:
                return problem(400, "malformed_body", f"body is not a JSON object: {exc}")
            dedupe = digest(event_type, body.decode("utf-8", "replace"))
        else:
            try:
                notification = event.decoder.decode(body)
            except msgspec.ValidationError as exc:
                return problem(400, "invalid_body", f"{event.name}: {exc}")
            except msgspec.DecodeError as exc:
                return problem(400, "malformed_body", f"body is not valid JSON: {exc}")
            if event.kind is None:
                dedupe = digest(event.name, body.decode("utf-8", "replace"))
            else:
                ids = event.entity_ids(notification)
                entities = [keys.entity_key(PARTNER, event.kind, i) for i in ids]
                dedupe = event.dedupe_digest(notification, ids)
        # accepted: reconciled; parked: kept, nothing to reconcile (unknown type or no id)
        outcome = "accepted" if entities else "parked"
        intake: Intake = state["intake"]  # type: ignore[assignment]
        try:
            accepted, did = await intake.accept(
                event_type=event_type, body=body, entities=entities, dedupe=dedupe
            )
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, answering 503: %s", type(exc).__name__)
            return problem(503, "unavailable", "event store unavailable, retry later", _UNAVAILABLE)
        if outcome == "parked" and accepted:
            log.warning("parked delivery", extra={"eventType": event_type, "deliveryId": did})
        if not accepted:
            return json_response({"status": "duplicate", "deliveryId": did})
        return json_response({"status": outcome, "deliveryId": did})

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        connection: aioredis.Redis = state["redis"]  # type: ignore[assignment]
        try:
            await connection.ping()
        except (RedisError, OSError):
            return problem(503, "unavailable", "redis unreachable", _UNAVAILABLE)
        return json_response({"status": "ready"})

    routes = [
        Route("/webhooks/tradevest/{event}", tradevest_webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def app_from_env() -> Starlette:
    """uvicorn factory (`receiver.app:app_from_env`), used by `partnersync serve`."""
    from partnersync import config
    from partnersync import log as pslog

    settings = config.load()
    pslog.setup(settings.log_level)
    return create_app(settings)
