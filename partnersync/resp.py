"""A lean, pipelined Redis connection for the receiver's one hot command.

redis-py's asyncio client spends about 150 µs of CPU on each call (connection pool, retry,
timeouts, instrumentation hooks): more than the intake script costs Redis for a batch of a
dozen deliveries. This connection writes RESP straight to an asyncio transport, reads
replies with hiredis, and answers them in order — several batches can be in flight on one
socket. Everything else the receiver asks of Redis still goes through redis-py.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import ssl
import time
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError

from partnersync import redisurl


def pack(args: tuple[Any, ...]) -> bytes:
    """A RESP array of bulk strings (str as UTF-8, int as decimal, bytes as is). hiredis
    builds it in C: an intake batch of 16 deliveries (103 arguments) in 9 µs, where the
    same loop in Python took 25."""
    packed: bytes = hiredis.pack_command(args)
    return packed


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float):
        self.timeout = timeout
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[tuple[float, asyncio.Future[Any]]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            _, future = self.waiting.popleft()
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(_error(str(reply)))
                if str(reply).startswith("READONLY"):
                    # a demoted primary (failover): the next call reconnects to the new one
                    self._fail(ConnectionError(f"Redis is no longer the primary: {reply}"))
                    return
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"connection to Redis lost: {exc or 'closed by the server'}"))

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        if self.lost is not None or self.transport is None or self.transport.is_closing():
            raise ConnectionError("not connected to Redis")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append((time.monotonic(), future))
        self.transport.write(packed)
        if self._watchdog is None:
            self._watchdog = loop.call_later(self.timeout, self._check)
        return future

    def _check(self) -> None:
        # One timer for the connection, not one per call: replies come in order, so only
        # the oldest outstanding call can be overdue.
        self._watchdog = None
        if not self.waiting:
            return
        overdue = self.waiting[0][0] + self.timeout - time.monotonic()
        if overdue <= 0:
            self._fail(TimeoutError(f"no reply from Redis within {self.timeout} s"))
            return
        self._watchdog = asyncio.get_running_loop().call_later(overdue, self._check)

    def _fail(self, exc: BaseException) -> None:
        # Replies can no longer be matched to calls: give up the connection and every call.
        if self.lost is None:
            self.lost = exc
        if self.transport is not None:
            self.transport.abort()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self.waiting:
            _, future = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)


def _tls(options: dict[str, Any]) -> ssl.SSLContext:
    """rediss:// — the query parameters redis-py reads for TLS, where they apply."""
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    if options.get("ssl_cert_reqs") in ("none", "optional"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def script_sha(script: str) -> str:
    """The name Redis gives a script (EVALSHA, SCRIPT EXISTS)."""
    return hashlib.sha1(script.encode()).hexdigest()


def _error(message: str) -> ResponseError:
    return NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)


class PipelinedConnection:
    """One connection to the Redis at `url` (redis://, rediss://, unix://, or the primary
    that redis+sentinel:// Sentinels name), opened on first use and again after it broke.
    Calls fail fast with redis-py's exceptions."""

    def __init__(self, url: str, *, connect_timeout: float = 1.0, timeout: float = 2.0):
        found = redisurl.sentinels(url)
        self.locator = redisurl.Locator(found, connect_timeout) if found else None
        self.options: dict[str, Any] = found.master_kwargs() if found else parse_url(url)
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Task[_Protocol] | None = None
        self._scripts: dict[str, str] = {}

    async def execute(self, *args: Any) -> Any:
        return await (await self._connection()).send(pack(args))

    async def pipeline(self, *commands: tuple[Any, ...]) -> list[Any]:
        """`commands` back to back on one connection (WAIT counts only the writes of the
        connection it is sent on); the first error raised."""
        protocol = await self._connection()
        futures = [protocol.send(pack(c)) for c in commands]
        replies = await asyncio.gather(*futures, return_exceptions=True)
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return list(replies)

    async def evalsha(
        self, script: str, *args: Any, keys: Sequence[str] = (), then: tuple[Any, ...] = ()
    ) -> Any:
        """Runs `script` by its SHA1, loading it when Redis does not know it (a restart).
        `then`: a command sent right behind it on the same connection; the reply is then
        (script's, then's)."""
        sha = self._scripts.get(script)
        if sha is None:
            sha = self._scripts[script] = script_sha(script)
        for call in ((b"EVALSHA", sha), (b"EVAL", script)):
            command = (*call, len(keys), *keys, *args)
            try:
                if not then:
                    return await self.execute(*command)
                first, second = await self.pipeline(command, then)
                return first, second
            except NoScriptError:
                continue
        raise AssertionError("unreachable: EVAL does not answer NOSCRIPT")

    async def _connection(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and protocol.lost is None:
            return protocol
        if self._connecting is None:  # the calls that arrive meanwhile share one attempt
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, task: asyncio.Task[_Protocol]) -> None:
        self._connecting = None
        if not task.cancelled() and task.exception() is None:
            self._protocol = task.result()

    async def _connect(self) -> _Protocol:
        o = self.options
        loop = asyncio.get_running_loop()

        def factory() -> _Protocol:
            return _Protocol(self.timeout)

        protocol: _Protocol | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                if self.locator is not None:
                    host, port = await self.locator.primary()
                    _, protocol = await loop.create_connection(factory, host, port)
                elif "path" in o:
                    _, protocol = await loop.create_unix_connection(factory, o["path"])
                else:
                    tls = _tls(o) if o.get("connection_class") is SSLConnection else None
                    _, protocol = await loop.create_connection(
                        factory, o.get("host", "localhost"), o.get("port", 6379), ssl=tls
                    )
                if o.get("password"):
                    auth = (o["username"], o["password"]) if o.get("username") else (o["password"],)
                    await protocol.send(pack((b"AUTH", *auth)))
                if o.get("db"):
                    await protocol.send(pack((b"SELECT", o["db"])))
                if self.locator is not None:  # the Sentinels' view may lag a failover
                    role = await protocol.send(pack((b"ROLE",)))
                    if role[0] != b"master":
                        raise ConnectionError("the Redis the Sentinels name is not a primary")
        except BaseException as exc:
            if protocol is not None and protocol.transport is not None:
                protocol.transport.abort()
            if isinstance(exc, (OSError, asyncio.TimeoutError)):
                raise ConnectionError(f"cannot connect to Redis: {exc!r}") from None
            raise
        return protocol

    async def aclose(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
