"""The workers' HTTP transport: httpx over httpcore's AnyIO backend, minus one hot cost.

Before every request and after every response, httpcore's pool asks each idle keep-alive
connection whether its socket turned readable (the server closed it). Through AnyIO that
question rebuilds a dict of socket attributes, with a getpeername() system call, per
connection per ask: with a batch of fetches over 16 connections it was about 40% of a
worker's CPU. The streams here keep their socket and ask poll() directly.
"""

from __future__ import annotations

import contextlib
import contextvars
import select
import socket
import ssl
import struct
import time
import typing
import urllib.request
from urllib.parse import urlsplit

import httpcore
import httpx

from partnersync import failpoints


def is_readable(sock: socket.socket | None) -> bool:
    """Would recv() return at once (data, or the b'' of a closed connection)?"""
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True  # gone: as good as closed
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


# The latest moment (time.monotonic()) a request of the current task may leave: set by a
# command around its create, from its lease (see partnersync/commands.py). Checked in the stream
# right before the bytes are handed to the socket, the closest point to the wire.
send_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "send_deadline", default=None
)


class DeadlinePassed(Exception):
    """The lease this request was sent under could have expired: it was not sent."""


_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, drops what is unsent


def abort_on_close(sock: socket.socket | None) -> None:
    """Make every close() of this socket an abort (RST): the kernel discards the bytes it
    has not yet delivered and forgets the connection, instead of retransmitting them for
    minutes (FIN-WAIT-1) into a partition that may heal after a successor's lookup. Also
    when the process dies: the kernel's close of its descriptors aborts too."""
    if sock is not None and sock.fileno() >= 0:
        with contextlib.suppress(OSError):  # already gone
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream):
        self._stream = stream
        self._socket = stream.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        deadline = send_deadline.get()
        if deadline is not None:  # a create: whatever ends this connection, aborts it
            if time.monotonic() >= deadline:
                raise DeadlinePassed(
                    f"send deadline passed {time.monotonic() - deadline:.3f} s ago"
                )
            abort_on_close(self._socket)
            failpoints.hit("transport.before_write")
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            return is_readable(self._socket)
        return self._stream.get_extra_info(info)


class Backend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def pool(connections: int, url: str) -> httpcore.AsyncConnectionPool:
    """A connection pool on Backend for callers that speak httpcore directly to `url`'s
    host (outbound webhooks: httpx's request and response models cost more CPU than the
    request itself at a thousand deliveries a second). An environment proxy for the
    URL's scheme applies, unless NO_PROXY names the host."""
    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        return httpcore.AsyncHTTPProxy(
            proxy_url=proxy, ssl_context=httpx.create_ssl_context(), max_connections=connections
        )
    return httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=connections,
        max_keepalive_connections=connections,
        network_backend=Backend(),
    )


def transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport | None:
    """httpx's own transport (its error mapping, TLS defaults) over a pool on Backend;
    None where environment proxies apply (httpx honours them only with its default
    transport, and they matter more than the saving).

    httpx offers no parameter for the network backend, so the pool it built is replaced
    by an identical one that has it (tests/test_transport.py checks this still holds)."""
    if urllib.request.getproxies():
        return None
    http = httpx.AsyncHTTPTransport(limits=limits)
    http._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=Backend(),
    )
    return http
