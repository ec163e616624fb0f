"""The sender: delivers the outbox's due messages to the endpoints (outbound webhooks).

Up to PARTNERSYNC_SENDERS sender jobs run at once (`Outbox.senders`; one more is kicked
when a sender's slots are all taken). Each round one of them routes new changes (the
route script's cursor check keeps a sender that lost the role from writing), each claims per enabled endpoint up to
PARTNERSYNC_ENDPOINT_CONCURRENCY entities (claims are atomic per entity: two senders never
hold the same entity), delivers each in a task of its own on the worker's event loop, so a
slow endpoint only ever holds its own slots, and records what its deliveries came to. It runs until idle or its time budget is spent, then hands over to a fresh job when
work remains (jobs/deliver.py).

Deliveries go over the workers' transport (partnersync/transport.py: its network backend,
a pool per endpoint) with the partner clients' timeout, through httpcore directly: at a
thousand deliveries a second httpx's models cost more CPU than the requests. A delivery
leaves only while its claim's lease holds (the transport's send deadline), so a sender
paused past it sends nothing and can never overtake the next sender's copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpcore

from partnersync import endpoints, retry, transport
from partnersync.config import Settings
from partnersync.endpoints import Endpoint
from partnersync.outbound import DELIVERED, Claim, Message, Outbox, Outcome
from partnersync.workqueue import redis_ms

log = logging.getLogger("partnersync.sender")

HOLD_MS = 5_000  # a sender that stops extending its hold frees its place this soon
IDLE_S = 2.0  # a sender with nothing to do for this long ends (the next change kicks one)
POLL_S = 0.005  # between rounds while work is in flight or arriving
REFRESH_S = 1.0  # endpoints re-read, the hold extended, failing endpoints checked
KICK_EVERY_S = 0.5  # a saturated sender asks for help at most this often
MAX_RUN_S = 240.0  # a sender job's longest run (rqbridge.enqueue's job timeout is 300 s)


@dataclass
class Totals:
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    routed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "failed": self.failed, "dead": self.dead,
                "routed": self.routed}  # fmt: skip


def retry_after(headers: list[tuple[bytes, bytes]]) -> float | None:
    """Retry-After in seconds or as an HTTP date (RFC 9110 §10.2.3)."""
    value = next((v.decode("latin-1") for k, v in headers if k.lower() == b"retry-after"), "")
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return None


class Route:
    """One endpoint's pool and the parts of its requests that never change."""

    def __init__(self, endpoint: Endpoint, connections: int, timeout_s: float):
        self.endpoint = endpoint
        self.pool = transport.pool(connections, endpoint.url)
        self.url = httpcore.URL(endpoint.url)
        self.host = (urlsplit(endpoint.url).netloc or "").encode()
        self.timeouts = {"timeout": {"connect": timeout_s, "read": timeout_s,
                                     "write": timeout_s, "pool": timeout_s}}  # fmt: skip
        self.inflight: set[asyncio.Task[None]] = set()


class Sender:
    def __init__(self, outbox: Outbox, settings: Settings, me: str):
        self.outbox = outbox
        self.settings = settings
        self.me = me
        self.totals = Totals()
        self.routes: dict[str, Route] = {}
        self.settled: list[Outcome] = []  # this round's outcomes, recorded next round
        self.stopping = False  # the worker was asked to stop: hand over now
        self.offset_ms = 0  # Redis's clock less this process's (a change's id is Redis's)

    async def run(self, budget_s: float) -> Totals:
        """Deliver until idle for IDLE_S or `budget_s` is spent (False from `take`: as
        many senders as allowed run already, nothing to do). A sender whose budget ran out
        with work left gives its place to a successor at once, before it waits for its
        deliveries in flight, so that the changes keep going."""
        if not self.outbox.senders("take", self.me, HOLD_MS):
            return self.totals
        busy = False
        try:
            busy = await self._rounds(time.monotonic() + budget_s)
        finally:
            self.outbox.senders("release", self.me)
            if busy:
                self.outbox.kick(self.settings.queue, helper=True)
            inflight = [t for r in self.routes.values() for t in r.inflight]
            if inflight:  # each is bounded by the HTTP timeout
                await asyncio.wait(inflight)
            self._settle()
            for route in self.routes.values():
                await route.pool.aclose()
        return self.totals

    async def _rounds(self, deadline: float) -> bool:
        """Rounds until idle (False) or `deadline` (True: work was going on). At the
        deadline a sender goes on while no other job waits for a worker (handing over
        would only cost the changes a gap), up to MAX_RUN_S (RQ's job timeout)."""
        ends = time.monotonic() + MAX_RUN_S
        targets: list[Endpoint] = []
        cursor: str | None = None  # None: another sender routes
        refreshed = 0.0
        kicked = 0.0
        idle_since = time.monotonic()
        while True:
            now = time.monotonic()
            if self.stopping:
                return True
            if now >= deadline:
                if now >= ends or self.outbox.others_waiting(self.settings.queue):
                    return True
                deadline = now + REFRESH_S
            if now - refreshed >= REFRESH_S:
                held = self.outbox.senders("hold", self.me, HOLD_MS)
                if not held:
                    log.warning("sender lost its place (paused past its hold)")
                    return False
                self.offset_ms = redis_ms(self.outbox.connection) - int(time.time() * 1000)
                targets = self._check_failing(endpoints.listed(self.outbox.connection))
                self._routes(targets)
                cursor = self.outbox.cursor(targets) if held == 2 else None
                if cursor is not None:
                    self.outbox.check_trimmed(cursor)
                refreshed = now
            free = {
                e.id: self.settings.endpoint_concurrency - len(self.routes[e.id].inflight)
                for e in targets
                if not e.disabled  # its changes queue; `endpoints enable` resumes them
            }
            outcomes, self.settled = self.settled, []
            got = self.outbox.exchange(outcomes, {ep: n for ep, n in free.items() if n > 0}, cursor)
            self._count(outcomes, got.made)
            if got.entries and cursor is not None:
                moved = self.outbox.route(targets, cursor, got.entries)
                cursor = moved or self.outbox.cursor(targets)  # None: another sender routed
                self.totals.routed += len(got.entries) if moved else 0
            loop = asyncio.get_running_loop()
            saturated = any(len(c) == free[ep] for ep, c in got.claims.items())
            if saturated and now - kicked >= KICK_EVERY_S:
                # more was due than its slots took: another sender (up to the cap) helps
                self.outbox.kick(self.settings.queue, helper=True)
                kicked = now
            for ep, claims in got.claims.items():
                route = self.routes[ep]
                for claim in claims:
                    task = loop.create_task(self._deliver(route, claim, time.monotonic()))
                    route.inflight.add(task)
                    task.add_done_callback(route.inflight.discard)
            busy = (
                outcomes
                or got.entries
                or any(got.claims.values())
                or any(r.inflight for r in self.routes.values())
            )
            if busy:
                idle_since = now
            elif now - idle_since >= IDLE_S:
                return False
            await asyncio.sleep(POLL_S if busy else POLL_S * 4)

    def _routes(self, targets: list[Endpoint]) -> None:
        """A pool per endpoint (an endpoint's URL never changes; its secrets may rotate)."""
        for e in targets:
            route = self.routes.get(e.id)
            if route is None:
                self.routes[e.id] = Route(e, self.settings.endpoint_concurrency,
                                          self.settings.http_timeout_s)  # fmt: skip
            else:
                route.endpoint = e

    def _settle(self) -> None:
        """Record the outcomes not yet recorded (when the sender ends)."""
        outcomes, self.settled = self.settled, []
        if outcomes:
            self._count(outcomes, self.outbox.settle(outcomes))

    def _count(self, outcomes: list[Outcome], made: list[int]) -> None:
        for outcome, m in zip(outcomes, made, strict=True):
            if outcome.outcome == DELIVERED:
                self.totals.delivered += m
            else:
                self.totals.failed += 1
                self.totals.dead += m < 0

    async def _deliver(self, route: Route, claim: Claim, claimed_at: float) -> None:
        message = Message.decode(claim.message)
        s = self.settings
        signed = endpoints.headers(route.endpoint, message.change_id, message.body)
        headers = [(b"host", route.host), (b"content-length", b"%d" % len(message.body)),
                   *((k.encode(), v.encode()) for k, v in signed.items())]  # fmt: skip
        # sent only while the claim's lease holds, with the timeout to spare
        token = transport.send_deadline.set(claimed_at + s.lease_ms / 1000 - s.http_timeout_s)
        try:
            response = await route.pool.request(
                b"POST", route.url, headers=headers, content=message.body,
                extensions=route.timeouts,
            )  # fmt: skip
        except transport.DeadlinePassed:
            return  # the lease's end makes it due again: redelivered, same webhook-id
        except httpcore.TimeoutException:
            self._failed(route, claim, "timeout", None)
            return
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol,
                OSError):  # fmt: skip
            self._failed(route, claim, "error", None)
            return
        except Exception:  # a bug, not the endpoint: said, and retried like a failure
            log.exception("outbound delivery raised", extra={"endpoint": route.endpoint.id})
            self._failed(route, claim, "error", None)
            return
        finally:
            transport.send_deadline.reset(token)
        if 200 <= response.status < 300:
            lag_s = max(0.0, (time.time() * 1000 + self.offset_ms - message.change_ms) / 1000)
            self.settled.append(Outcome(route.endpoint.id, claim, DELIVERED, lag_s=lag_s))
            return
        self._failed(route, claim, f"http_{response.status}", retry_after(response.headers))

    def _failed(self, route: Route, claim: Claim, outcome: str, after: float | None) -> None:
        delay = retry.backoff_ms(claim.tries, self.settings.retry_schedule_s, after)
        self.settled.append(Outcome(route.endpoint.id, claim, outcome, retry_in_ms=delay))

    def _check_failing(self, found: list[Endpoint]) -> list[Endpoint]:
        """Disable an endpoint failing, without one success, for longer than
        PARTNERSYNC_ENDPOINT_DISABLE_AFTER_S (its changes keep queuing; alerted by the
        partnersync_endpoint_disabled metric)."""
        state = self.outbox.state([e.id for e in found if not e.disabled])
        now_ms = int(time.time() * 1000) + self.offset_ms  # failing-since is Redis's time
        limit_ms = self.settings.endpoint_disable_after_s * 1000
        for endpoint in found:
            failing = state.get(endpoint.id)
            since = failing.failing_since_ms if failing else None
            if since is not None and now_ms - since >= limit_ms:
                reason = f"failing for {(now_ms - since) / 1000:.0f} s without a success"
                endpoints.disable(self.outbox.connection, endpoint.id, reason)
                endpoint.disabled = True
                log.error("endpoint disabled: failing without a success", extra={
                    "endpoint": endpoint.id, "failingSeconds": round((now_ms - since) / 1000)})  # fmt: skip
        return found
