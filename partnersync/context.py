"""What a worker process holds across jobs: Redis, the partners it runs and one client for
each, an event loop for concurrent fetches, the user's handlers.

RQ imports job functions by name, so the job finds its context here; the worker installs
it before it starts taking jobs (a job run elsewhere builds one from the environment).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import redis

from partnersync import config, handlers, outbound, partner, redisurl, transport, workqueue
from partnersync.config import Settings

T = TypeVar("T")
FETCH_CONCURRENCY = 16  # partner requests in flight per worker process


def connect(settings: Settings) -> redis.Redis:
    return redisurl.connect(
        config.redis_url(settings), socket_connect_timeout=2.0, socket_timeout=10.0
    )


class Context:
    def __init__(
        self,
        settings: Settings,
        connection: redis.Redis,
        user_handlers: handlers.Handlers | None = None,
    ):
        self.settings = settings
        self.connection = connection
        self.handlers = user_handlers or handlers.Handlers()
        self.loop = asyncio.new_event_loop()
        self.fetching = asyncio.Semaphore(FETCH_CONCURRENCY)
        self.calls: dict[str, int] = {}  # "partner:status" -> n, flushed into Redis per batch
        # A few keep-alive connections per partner serve a whole batch: httpcore's pool
        # bookkeeping grows with connections × waiting requests.
        self.http = self._client(FETCH_CONCURRENCY)
        self.catalog = partner.load(settings.partners)
        self.clients = {
            name: p.client(settings, self.http, connection)
            for name, p in self.catalog.partners.items()
        }
        # Commands get a pool of their own, one connection per command a claim may hold:
        # a create must leave before its lease's deadline, so it must never queue for a
        # connection behind slow fetches or other creates.
        self.command_http = self._client(max(settings.batch, FETCH_CONCURRENCY))
        self.command_clients = {n: c.over(self.command_http) for n, c in self.clients.items()}
        self.workqueue = workqueue.WorkQueue.from_settings(connection, settings)
        self.outbox = outbound.Outbox(
            connection,
            lease_ms=settings.lease_ms,
            attempts=settings.endpoint_attempts,
            senders=settings.senders,
        )

    def _client(self, connections: int) -> httpx.AsyncClient:
        """A keep-alive partner client over the workers' transport, its calls counted."""
        limits = httpx.Limits(
            max_connections=connections, max_keepalive_connections=FETCH_CONCURRENCY
        )
        return httpx.AsyncClient(
            timeout=self.settings.http_timeout_s,
            limits=limits,
            transport=transport.transport(limits),
            event_hooks={"response": [self._count]},
        )

    async def _count(self, response: httpx.Response) -> None:
        url = str(response.request.url)
        partner = self.catalog.partner_of(url, self.settings) or "other"
        name = f"{partner}:{response.status_code}"
        self.calls[name] = self.calls.get(name, 0) + 1

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.http.aclose())
        self.run(self.command_http.aclose())
        self.loop.close()


_current: Context | None = None


def install(ctx: Context | None) -> None:
    global _current
    _current = ctx


def current() -> Context:
    global _current
    if _current is None:
        settings = config.load()
        _current = Context(settings, connect(settings), handlers.load(settings.handlers))
    return _current
