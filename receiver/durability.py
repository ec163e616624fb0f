"""PARTNERSYNC_DURABILITY=fsync: a 2xx only for what is on disk.

The intake's reply comes back after Redis has written *and fsynced* the batch only when the
server runs `appendonly yes` with `appendfsync always` (Redis fsyncs the AOF before it
answers the clients of that event-loop turn, so the receiver's group commit shares one
fsync among a batch). With `everysec`, a 204 can precede the write by up to two seconds
when the disk is slow, and a crash then loses acknowledged deliveries.

The receiver checks the server's settings when it starts and again every minute (a
failover may land on a differently configured server). A server that cannot give the
guarantee stops the receiver at start with a message naming the setting; one that stops
giving it later is refused deliveries (503) until it does. Where CONFIG is not allowed
(managed Redis), the receiver says what it cannot verify and relies on the server's
documented configuration.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import NoPermissionError, ResponseError

log = logging.getLogger("partnersync.receiver")


class NotDurable(Exception):
    """The server cannot acknowledge on disk; the message names the setting."""


def problem(settings: dict[str, str]) -> str | None:
    """What keeps a server with these CONFIG values from acknowledging on disk, if anything."""
    if settings.get("appendonly") != "yes":
        return (
            f"appendonly is {settings.get('appendonly', 'unknown')!r}: "
            "PARTNERSYNC_DURABILITY=fsync needs appendonly yes and appendfsync always"
        )
    if settings.get("appendfsync") != "always":
        return (
            f"appendfsync is {settings.get('appendfsync', 'unknown')!r}: "
            "PARTNERSYNC_DURABILITY=fsync needs appendfsync always "
            "(or set PARTNERSYNC_DURABILITY=none to acknowledge what is in memory)"
        )
    return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Durability:
    """The fsync guarantee's state: None until checked, True when verified, False when
    the server was seen not to give it."""

    def __init__(self, mode: str):
        self.mode = mode
        self.verified: bool | None = None if mode == "fsync" else True
        self.unverifiable = False

    @property
    def refusing(self) -> bool:
        """Deliveries are answered 503: the guarantee is not (or not yet) verified."""
        return self.verified is not True

    def check_now(self, connection: Any) -> None:
        """At start, with a blocking connection: raises NotDurable; Redis errors
        (unreachable, loading) propagate, and the watcher checks later."""
        if self.mode != "fsync":
            return
        try:
            reply = connection.config_get("append*")
        except (NoPermissionError, ResponseError) as exc:
            self._unverifiable(exc)
            return
        self._assess(reply)

    async def check(self, connection: Any) -> None:
        """The same with the receiver's asyncio connection."""
        if self.mode != "fsync":
            return
        try:
            reply = await connection.config_get("append*")
        except (NoPermissionError, ResponseError) as exc:
            self._unverifiable(exc)
            return
        self._assess(reply)

    def _assess(self, reply: dict[Any, Any]) -> None:
        found = problem({_text(k): _text(v) for k, v in reply.items()})
        was = self.verified
        self.verified = found is None
        if found is not None:
            if was is not False:
                log.error("redis does not fsync before answering: %s", found)
            raise NotDurable(found)
        if was is False:
            log.warning("redis fsyncs before answering again: deliveries are accepted")

    def _unverifiable(self, exc: Exception) -> None:
        if not self.unverifiable:
            log.warning(
                "cannot verify that Redis fsyncs before it answers (CONFIG is not allowed: "
                "%s); acknowledgements are as durable as the server's appendfsync",
                type(exc).__name__,
            )
        self.unverifiable = True
        self.verified = True
