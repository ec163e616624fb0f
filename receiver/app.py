"""The receiver: Starlette routes for partner webhooks, health, readiness and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import Any

import msgspec
import redis
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from partnersync import keys
from partnersync.config import Settings, redis_url
from partnersync.metrics import RedisCollector
from receiver.auth import HeaderAuth, SourceAllowlist, StandardWebhooksAuth
from receiver.intake import Intake
from receiver.problems import json_response, problem, problem_body
from schemas.tradevest.events import EVENT_TYPES, PARTNER, digest

log = logging.getLogger("partnersync.receiver")

_EVENT_PATH = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_UNAVAILABLE = {"Retry-After": "5"}
MAX_DEPTH = 32  # JSON nesting accepted where a body is not decoded into a Struct


class BodyTooLarge(Exception):
    pass


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Nesting deeper than `limit` (brackets inside strings are not counted)."""
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


class ClientGone(Exception):
    pass


async def read_asgi_body(headers: Headers, receive: Receive, limit: int) -> bytes:
    """The body from the ASGI channel, refused as soon as it exceeds `limit`."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Outcome(msgspec.Struct):
    status: str
    deliveryId: str


_encode_outcome = msgspec.json.Encoder().encode
_JSON = (b"content-type", b"application/json")


class Answer:
    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers


class ASGIEndpoint:
    """A route endpoint Starlette runs as a raw ASGI app (it wraps plain functions in
    Request/Response; this route answers from pre-encoded bytes instead)."""

    def __init__(self, handler):
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            answer = await self.handler(scope, receive)
        except ClientGone:
            return
        headers = [_JSON, (b"content-length", str(len(answer.body)).encode())]
        if answer.headers:
            headers += [(k.lower().encode(), v.encode()) for k, v in answer.headers.items()]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})


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


def authenticator(settings: Settings) -> HeaderAuth | StandardWebhooksAuth:
    if settings.tradevest_webhook_auth == "standard-webhooks":
        return StandardWebhooksAuth(
            settings.tradevest_webhook_secrets, settings.webhook_tolerance_s
        )
    return HeaderAuth(settings.tradevest_webhook_header, settings.tradevest_webhook_secrets)


def create_app(settings: Settings) -> Starlette:
    auth = authenticator(settings)
    allowlist = SourceAllowlist(settings.allowed_cidrs)
    if not settings.tradevest_webhook_secrets:
        log.warning("TRADEVEST_WEBHOOK_SECRETS is empty: every delivery will be refused (401)")
    registry = CollectorRegistry(auto_describe=True)
    responses = Counter(
        "partnersync_receiver_responses", "Webhook deliveries answered, by event type and outcome",
        ["event_type", "outcome"], registry=registry,
    )  # fmt: skip
    intake_seconds = Histogram(
        "partnersync_intake_seconds", "Time to answer an accepted delivery",
        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0), registry=registry,
    )  # fmt: skip
    state: dict[str, object] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        connection = connect(settings)
        state["redis"] = connection
        state["intake"] = Intake(connection, settings)
        sync = redis.Redis.from_url(
            redis_url(settings), socket_connect_timeout=1.0, socket_timeout=2.0
        )
        registry.register(RedisCollector(sync, settings.queue))
        try:
            yield
        finally:
            await connection.aclose()
            sync.close()

    counters: dict[tuple[str, str], Any] = {}

    def count(event_type: str, outcome: str) -> None:
        # labels() takes a lock and builds a key per call: keep the children
        child = counters.get((event_type, outcome))
        if child is None:
            child = counters[(event_type, outcome)] = responses.labels(event_type, outcome)
        child.inc()

    def refuse(
        event_type: str, outcome: str, status: int, error: str, detail: str, headers=None
    ) -> Answer:
        count(event_type, outcome)
        return Answer(status, problem_body(error, detail), headers)

    async def tradevest_webhook(scope: Scope, receive: Receive) -> Answer:
        """The webhook route as a plain ASGI handler: no Request/Response objects on the
        hot path (the checks and their order are the same as ever)."""
        started = time.perf_counter()
        path = scope["path_params"]["event"]
        if not _EVENT_PATH.match(path):
            return Answer(404, problem_body("unknown_route", "no such webhook route"))
        headers = Headers(scope=scope)
        client = scope.get("client")
        event = EVENT_TYPES.get(path)
        event_type = event.name if event else path.upper().replace("-", "_")
        if not allowlist.allows(client[0] if client else None):
            return refuse(event_type, "forbidden", 403, "forbidden", "source address not allowed")
        if not auth.needs_body:
            reason = auth.check(headers)
            if reason:
                return refuse(event_type, "auth_failed", 401, "unauthorized", reason)
        if not _is_json(headers.get("content-type")):
            return refuse(
                event_type,
                "bad_request",
                415,
                "unsupported_media_type",
                "body must be application/json",
            )
        try:
            body = await read_asgi_body(headers, receive, settings.max_body)
        except BodyTooLarge:
            return refuse(
                event_type,
                "bad_request",
                413,
                "payload_too_large",
                f"body exceeds {settings.max_body} bytes",
            )
        if auth.needs_body:
            reason = auth.check(headers, body)
            if reason:
                return refuse(event_type, "auth_failed", 401, "unauthorized", reason)
        entities: list[str] = []
        if event is None or event.kind is None:
            # Not decoded into a Struct (unknown event type, or prices): archived as is.
            if too_deep(body):
                return refuse(
                    event_type,
                    "bad_request",
                    400,
                    "too_deep",
                    f"JSON nested deeper than {MAX_DEPTH}",
                )
            try:
                msgspec.json.decode(body, type=dict if event is None else object)
            except msgspec.DecodeError as exc:
                return refuse(
                    event_type,
                    "bad_request",
                    400,
                    "malformed_body",
                    f"body is not a JSON object: {exc}",
                )
            except RecursionError:
                return refuse(event_type, "bad_request", 400, "too_deep", "JSON nested too deeply")
            dedupe = digest(event_type, body.decode("utf-8", "replace"))
        else:
            try:
                notification = event.decoder.decode(body)
            except msgspec.ValidationError as exc:
                return refuse(
                    event_type, "bad_request", 400, "invalid_body", f"{event.name}: {exc}"
                )
            except msgspec.DecodeError as exc:
                return refuse(
                    event_type,
                    "bad_request",
                    400,
                    "malformed_body",
                    f"body is not valid JSON: {exc}",
                )
            except RecursionError:  # msgspec's guard against deeply nested input
                return refuse(event_type, "bad_request", 400, "too_deep", "JSON nested too deeply")
            ids = event.entity_ids(notification)
            entities = [keys.entity_key(PARTNER, event.kind, i) for i in ids]
            dedupe = event.dedupe_digest(notification, ids)
        delivery = auth.delivery_key(headers)
        if delivery is not None:
            dedupe = digest("webhook-id", delivery)
        intake: Intake = state["intake"]  # type: ignore[assignment]
        try:
            accepted, did = await intake.accept(
                event_type=event_type, body=body, entities=entities, dedupe=dedupe
            )
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, answering 503", extra={"error": type(exc).__name__})
            return refuse(
                event_type,
                "unavailable",
                503,
                "unavailable",
                "event store unavailable, retry later",
                _UNAVAILABLE,
            )
        # accepted: will be reconciled; parked: kept, nothing to reconcile
        outcome = ("accepted" if entities else "parked") if accepted else "duplicate"
        count(event_type, outcome)
        intake_seconds.observe(time.perf_counter() - started)
        if outcome == "parked":
            log.warning("parked delivery", extra={"eventType": event_type, "deliveryId": did})
        return Answer(200, _encode_outcome(Outcome(outcome, did)))

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        connection: aioredis.Redis = state["redis"]  # type: ignore[assignment]
        try:
            await connection.ping()
        except (RedisError, OSError):
            return problem(503, "unavailable", "redis unreachable", _UNAVAILABLE)
        return json_response({"status": "ready"})

    async def metrics(request: Request) -> Response:
        try:
            text = await asyncio.to_thread(generate_latest, registry)
        except (RedisError, OSError):
            return problem(503, "unavailable", "redis unreachable", _UNAVAILABLE)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/webhooks/tradevest/{event}", ASGIEndpoint(tradevest_webhook), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def app_from_env() -> Starlette:
    """uvicorn factory (`receiver.app:app_from_env`), used by `partnersync serve`."""
    from partnersync import config
    from partnersync import log as pslog

    settings = config.load()
    pslog.setup(settings.log_level)
    return create_app(settings)
