"""Where Redis is: REDIS_URL, a plain URL or Sentinels that know the primary.

    redis://…, rediss://…, unix://…            one server
    redis+sentinel://[[user]:password@]host:port[,host:port…]/<master-name>[/db]
        [?sentinel_password=…]

With Sentinels, a connection asks them for the primary's address each time it (re)connects
and checks the answer's role, so every process follows a failover without a restart: its
calls fail (and are retried or answered 503) during the switch, and the next connection
reaches the new primary. A connection still open to a demoted primary is dropped at its
first refused write (READONLY). The URL's password is the primary's (and its replicas');
Sentinels that require one of their own take `sentinel_password`.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import parse_qs, unquote

import msgspec
import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as asentinel
import redis.sentinel

from partnersync.errors import ConfigError

SCHEME = "redis+sentinel://"


class Sentinels(msgspec.Struct, frozen=True):
    """A parsed redis+sentinel:// URL."""

    addresses: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None

    def master_kwargs(self) -> dict[str, Any]:
        return {"db": self.db, "username": self.username, "password": self.password}

    def sentinel_kwargs(self, timeout: float) -> dict[str, Any]:
        return {
            "password": self.sentinel_password,
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
        }


def sentinels(url: str) -> Sentinels | None:
    """The Sentinels `url` names, or None for a plain URL. Raises ConfigError."""
    if not url.startswith(SCHEME):
        return None
    rest, _, query = url[len(SCHEME) :].partition("?")
    credentials, _, location = rest.rpartition("@")
    hosts, _, path = location.partition("/")
    parts = [p for p in path.split("/") if p]
    if not hosts or not parts or len(parts) > 2:
        raise ConfigError(
            f"REDIS_URL: expected {SCHEME}[:password@]host:port[,host:port…]/<master-name>[/db]"
        )
    addresses = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise ConfigError(f"REDIS_URL: Sentinel address {host!r} is not host:port")
        addresses.append((name.strip("[]"), int(port)))
    if len(parts) == 2 and not parts[1].isdigit():
        raise ConfigError(f"REDIS_URL: database {parts[1]!r} is not a number")
    username, _, password = credentials.partition(":") if credentials else ("", "", "")
    options = parse_qs(query)
    return Sentinels(
        tuple(addresses),
        unquote(parts[0]),
        int(parts[1]) if len(parts) == 2 else 0,
        unquote(username) or None,
        unquote(password) or None,
        options.get("sentinel_password", [None])[0],
    )


def connect(url: str, **kwargs: Any) -> redis.Redis:
    """A blocking client; `kwargs` as redis.Redis takes them (timeouts)."""
    found = sentinels(url)
    if found is None:
        return redis.Redis.from_url(url, **kwargs)
    timeout = kwargs.get("socket_connect_timeout") or 1.0
    manager = redis.sentinel.Sentinel(
        list(found.addresses), sentinel_kwargs=found.sentinel_kwargs(timeout)
    )
    return manager.master_for(found.master, **found.master_kwargs(), **kwargs)


def connect_async(url: str, **kwargs: Any) -> aioredis.Redis:
    """An asyncio client; `kwargs` as redis.asyncio.Redis takes them."""
    found = sentinels(url)
    if found is None:
        return aioredis.Redis.from_url(url, **kwargs)
    timeout = kwargs.get("socket_connect_timeout") or 1.0
    manager = asentinel.Sentinel(
        list(found.addresses), sentinel_kwargs=found.sentinel_kwargs(timeout)
    )
    return manager.master_for(found.master, **found.master_kwargs(), **kwargs)


class Locator:
    """The primary's current address, asked of the Sentinels (for connections that are
    not redis-py's, such as the receiver's pipelined one)."""

    def __init__(self, found: Sentinels, timeout: float = 1.0):
        self.found = found
        self.manager = asentinel.Sentinel(
            list(found.addresses), sentinel_kwargs=found.sentinel_kwargs(timeout)
        )

    async def primary(self) -> tuple[str, int]:
        """Raises redis' MasterNotFoundError while no Sentinel names a healthy primary."""
        host, port = await self.manager.discover_master(self.found.master)
        return str(host), int(port)


def wait_until_reachable(
    connection: redis.Redis, logger: logging.Logger, *, first: float = 0.2, cap: float = 10.0
) -> None:
    """Blocks until Redis answers (absent at start, or still loading its data), backing off
    from `first` to `cap` seconds; logs once when it starts waiting and once when Redis
    answers, with the attempts, rather than a line (or a crash) per attempt."""
    attempts, delay, since = 0, first, time.monotonic()
    while True:
        try:
            connection.ping()
        except (redis.RedisError, OSError) as exc:
            if not attempts:
                logger.warning(
                    "redis unavailable at start; waiting for it",
                    extra={"error": type(exc).__name__},
                )
            attempts += 1
            time.sleep(delay)
            delay = min(cap, delay * 2)
            continue
        if attempts:
            logger.warning(
                "redis available",
                extra={"attempts": attempts, "seconds": round(time.monotonic() - since, 1)},
            )
        return


def display(url: str) -> str:
    """`url` with its password masked, for messages and `status` (secrets never print)."""
    return _PASSWORD.sub(r"\1***@", url)


_PASSWORD = re.compile(r"(//[^/@:]*:)[^@/]+@")
