"""The receiver: partner webhooks, health, readiness and metrics.

Deliveries (`POST /webhooks/{partner}/{event}`) go straight to their ASGI handler; the few
other routes are a Starlette app. The split keeps the per-request path short: Starlette's
router and the middleware layers that wrap every `send` cost a delivery about as much as
all its checks together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from partnersync import redisurl
from partnersync.config import Settings, redis_url
from partnersync.metrics import RedisCollector
from partnersync.partner import load as catalog
from partnersync.resp import PipelinedConnection
from receiver.allowlist import SourceAllowlist
from receiver.durability import Durability, NotDurable
from receiver.intake import Intake
from receiver.problems import json_response, problem, problem_body
from receiver.webhook import PREFIX, Outcomes, PartnerRoute, PartnerWebhook, send_problem

log = logging.getLogger("partnersync.receiver")

_UNAVAILABLE = {"Retry-After": "5"}
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def connect(settings: Settings) -> aioredis.Redis:
    # Fail fast when Redis is down (the sender gets a 503 and redelivers); one retry
    # re-establishes a connection that a Redis restart broke.
    return redisurl.connect_async(
        redis_url(settings),
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        health_check_interval=0,
    )


def partner_routes(settings: Settings) -> dict[str, PartnerRoute]:
    """Every partner in the catalog that pushes webhooks, by its route segment."""
    partners = catalog(settings.partners).partners.values()
    return {
        p.name: PartnerRoute(p.webhooks, p.webhooks.authenticator(settings))
        for p in partners
        if p.webhooks is not None
    }


class Receiver:
    """The ASGI app uvicorn serves: webhook deliveries to `webhook`, the rest to `app`."""

    def __init__(self, webhook: ASGIApp, app: ASGIApp):
        self.webhook, self.app = webhook, app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            body = problem_body("method_not_allowed", "webhooks are delivered with POST")
            await send_problem(send, 405, body, [(b"allow", b"POST")])
            return
        try:
            await self.webhook(scope, receive, send)
        except Exception:
            # What ServerErrorMiddleware does for the Starlette routes. The handler sends
            # its answer last, so a failure has not started one: the sender retries.
            log.exception("webhook handler failed")
            body = problem_body("internal_error", "the delivery was not stored")
            await send_problem(send, 500, body)


def create_app(
    settings: Settings, durability: Durability | None = None, metrics_dir: str | None = None
) -> Receiver:
    """`durability`: as checked at start (app_from_env); unchecked otherwise.
    `metrics_dir`: prometheus_client's multiprocess directory when several receiver
    processes serve one port: /metrics then sums their counters, whichever answers."""
    durability = durability or Durability(settings.durability)
    registry = CollectorRegistry(auto_describe=True)
    # what /metrics renders: this process's registry, or every process's files
    exposed = registry
    if metrics_dir:
        exposed = CollectorRegistry(auto_describe=True)
        MultiProcessCollector(exposed, metrics_dir)
    connection = connect(settings)
    webhook = PartnerWebhook(
        partner_routes(settings),
        SourceAllowlist(settings.allowed_cidrs),
        Intake(PipelinedConnection(redis_url(settings)), connection, settings),
        Outcomes(registry),
        max_entities=settings.max_entities,
        max_body=settings.max_body,
    )

    webhook.durability = durability

    async def watch_durability() -> None:
        """Re-checks the server's persistence settings every minute (every second until
        it has been reached once): a failover may land on another server."""
        while True:
            if durability.verified is not None:  # checked at start or in the last round
                await asyncio.sleep(60.0)
            try:
                await durability.check(connection)
            except NotDurable:
                pass  # logged once; deliveries are refused until it holds again
            except (RedisError, OSError):
                await asyncio.sleep(1.0)  # not reachable yet (absent, loading): keep trying

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        watcher = asyncio.get_running_loop().create_task(watch_durability())
        sync = redisurl.connect(redis_url(settings), socket_connect_timeout=1.0, socket_timeout=2.0)
        partners = catalog(settings.partners).partners.values()
        collector = RedisCollector(
            sync, settings.queue, [p.metrics for p in partners if p.metrics is not None]
        )
        exposed.register(collector)
        try:
            yield
        finally:
            watcher.cancel()
            exposed.unregister(collector)
            await webhook.intake.pipelined.aclose()
            await connection.aclose()
            sync.close()

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await connection.ping()
        except (RedisError, OSError):
            return problem(503, "unavailable", "redis unreachable", _UNAVAILABLE)
        if durability.verified is not True:
            detail = (
                "redis does not fsync before answering"
                if durability.refusing
                else ("redis persistence settings not verified yet")
            )
            return problem(503, "unavailable", detail, _UNAVAILABLE)
        return json_response({"status": "ready"})

    async def metrics(request: Request) -> Response:
        try:
            text = await asyncio.to_thread(generate_latest, exposed)
        except (RedisError, OSError):
            return problem(503, "unavailable", "redis unreachable", _UNAVAILABLE)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    handlers = {HTTPException: http_problem}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)  # type: ignore[arg-type]
    return Receiver(webhook, app)


async def http_problem(request: Request, exc: HTTPException) -> Response:
    """Starlette's own 404/405 as JSON problems, like every other answer."""
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    return problem(exc.status_code, error, exc.detail, headers)


def app_from_env() -> Receiver:
    """uvicorn factory (`receiver.app:app_from_env`), used by `partnersync serve`."""
    from partnersync import config
    from partnersync import log as pslog

    settings = config.load()
    pslog.setup(settings.log_level)
    durability = Durability(settings.durability)
    connection = redisurl.connect(
        redis_url(settings), socket_connect_timeout=1.0, socket_timeout=2.0
    )
    try:
        durability.check_now(connection)
    except NotDurable as exc:
        # refuse to run rather than acknowledge what a crash can lose (logged by check)
        print(f"partnersync: {exc}", file=sys.stderr)
        sys.exit(2)
    except (RedisError, OSError) as exc:  # absent or loading: start, not ready yet
        log.warning(
            "redis not reachable at start; not ready until it is",
            extra={"error": type(exc).__name__},
        )
    finally:
        connection.close()
    # set by `serve` for WEB_CONCURRENCY > 1 (prometheus_client reads it at import, too)
    return create_app(settings, durability, os.environ.get(METRICS_DIR))
