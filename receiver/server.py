"""Serving the receiver: uvicorn configured for an edge that faces the internet.

- Every request must finish sending its headers within PARTNERSYNC_HEADER_TIMEOUT_S of
  the connection opening (or of the previous response): a client trickling a header line
  now and then (slowloris) is closed instead of holding a connection for ever.
- At most PARTNERSYNC_MAX_CONNECTIONS open connections per process (uvicorn's
  limit_concurrency; beyond it a request is answered 503 at once, and the sender retries).
- X-Forwarded-For / -Proto are believed only from PARTNERSYNC_TRUSTED_PROXIES (uvicorn
  trusts loopback by default, which would let anyone on the host pass the CIDR allowlist).
- uvicorn's own log lines are JSON like the rest (partnersync/log.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
import tempfile
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from partnersync import log
from partnersync.config import Settings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # uvicorn without its standard extras
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


class HeaderDeadline:
    """Closes a connection whose request headers are not complete in time. Mixed into
    uvicorn's protocol classes; the deadline is read from uvicorn's Config
    (`header_timeout_s`, set by `serve`)."""

    config: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    _header_timer: asyncio.TimerHandle | None = None
    _header_due = 0.0  # loop.time() by which the next request's headers must be in

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        # Moves the deadline without touching the timer (a cancel and a new timer per
        # request cost ~2% of the receiver's CPU): a timer that fires early re-arms for the rest.
        self._header_due = self.loop.time() + getattr(self.config, "header_timeout_s", 10.0)
        if self._header_timer is None:
            self._header_timer = self.loop.call_at(self._header_due, self._deadline)

    def _deadline(self) -> None:
        self._header_timer = None
        if self.loop.time() < self._header_due:  # a response since: the deadline moved
            self._header_timer = self.loop.call_at(self._header_due, self._deadline)
            return
        cycle = self.cycle
        handling = cycle is not None and not cycle.response_complete
        if not handling and not self.transport.is_closing():
            self.transport.close()


class H11HeaderDeadline(HeaderDeadline, H11Protocol):
    pass


if HttpToolsProtocol is not None:

    class HttpToolsHeaderDeadline(HeaderDeadline, HttpToolsProtocol):
        pass


def protocol() -> str:
    """The fastest parser installed, with the header deadline."""
    if HttpToolsProtocol is not None:
        return "receiver.server:HttpToolsHeaderDeadline"
    return "receiver.server:H11HeaderDeadline"


def raise_open_files_limit() -> None:
    """Each connection is a file descriptor: the soft limit (often 1024) up to the hard
    one, so the connection cap, not accept() failing, is what bounds connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1 << 16 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):  # not allowed here: keep the limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def serve(settings: Settings, host: str, port: int) -> int:
    raise_open_files_limit()
    trusted = list(settings.trusted_proxies)
    config = uvicorn.Config(
        "receiver.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=settings.web_concurrency,
        http=protocol(),
        limit_concurrency=settings.max_connections,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        log_config=log.uvicorn_config(settings.log_level),
        access_log=False,
    )
    config.header_timeout_s = settings.header_timeout_s  # type: ignore[attr-defined]
    server = uvicorn.Server(config)
    if config.workers > 1:
        from uvicorn.supervisors import Multiprocess

        from receiver.app import METRICS_DIR

        # the processes' counters in one directory, summed by /metrics (prometheus_client's
        # multiprocess mode); a fresh one per run, so nothing is counted twice
        with tempfile.TemporaryDirectory(prefix="partnersync-metrics-") as directory:
            os.environ[METRICS_DIR] = directory
            Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        server.run()
    if config.workers == 1 and not server.started:
        sys.exit(3)  # startup failed (uvicorn's STARTUP_FAILURE); the log says why
    return 0
