"""The sender: delivers the outbox's due messages to the endpoints (outbound webhooks).

One sender job at a time holds the outbox (`Outbox.runner`): it routes new changes and
claims, per enabled endpoint, up to PARTNERSYNC_ENDPOINT_CONCURRENCY entities, each
delivery a task of its own on the worker's event loop, so a slow endpoint only ever
holds its own slots. It runs until idle or its time budget is spent, then hands over
to a fresh job when work remains (jobs/deliver.py).

Deliveries go over the workers' transport (partnersync/transport.py) with the partner
clients' timeout, in a pool of their own. A delivery leaves only while its claim's lease
holds (the transport's send deadline): a sender paused past it sends nothing, so the
next sender's copy can never be overtaken by a stale one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx

from partnersync import endpoints, retry, transport
from partnersync.config import Settings
from partnersync.endpoints import Endpoint
from partnersync.outbound import Claim, Message, Outbox

log = logging.getLogger("partnersync.sender")

RUNNER_TTL_MS = 5_000  # a sender that stops extending its hold frees the outbox this soon
IDLE_S = 2.0  # a sender with nothing to do for this long ends (the next change kicks one)
POLL_S = 0.005  # between rounds while work is in flight or arriving
REFRESH_S = 1.0  # endpoints re-read, the hold extended, failing endpoints checked


@dataclass
class Totals:
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    routed: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "failed": self.failed, "dead": self.dead,
                "routed": self.routed}  # fmt: skip


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds or as an HTTP date (RFC 9110 §10.2.3)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return None


class Sender:
    def __init__(self, outbox: Outbox, settings: Settings, me: str):
        self.outbox = outbox
        self.settings = settings
        self.me = me
        self.totals = Totals()
        self._inflight: dict[str, set[asyncio.Task[None]]] = {}
        limits = httpx.Limits(
            max_connections=None, max_keepalive_connections=4 * settings.endpoint_concurrency
        )
        self.http = httpx.AsyncClient(
            timeout=settings.http_timeout_s, limits=limits, transport=transport.transport(limits)
        )

    async def run(self, budget_s: float) -> Totals:
        """Deliver until idle for IDLE_S or `budget_s` is spent; the outbox is held
        throughout (False from `take`: another sender has it, nothing to do)."""
        if not self.outbox.runner("take", self.me, RUNNER_TTL_MS):
            return self.totals
        try:
            await self._rounds(time.monotonic() + budget_s)
        finally:
            await self._finish()
            self.outbox.runner("release", self.me)
            await self.http.aclose()
        return self.totals

    async def _rounds(self, deadline: float) -> None:
        targets: list[Endpoint] = []
        refreshed = 0.0
        idle_since = time.monotonic()
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now - refreshed >= REFRESH_S:
                if not self.outbox.runner("hold", self.me, RUNNER_TTL_MS):
                    log.warning("sender lost the outbox (paused past its hold)")
                    return
                targets = self._check_failing(endpoints.listed(self.outbox.connection))
                refreshed = now
            routed = self.outbox.route(targets)
            self.totals.routed += routed
            claimed = 0
            for endpoint in targets:
                if endpoint.disabled:
                    continue  # its changes queue; `endpoints enable` resumes them
                tasks = self._inflight.setdefault(endpoint.id, set())
                free = self.settings.endpoint_concurrency - len(tasks)
                if free <= 0:
                    continue
                for claim in self.outbox.claim(endpoint.id, free):
                    claimed += 1
                    task = asyncio.get_running_loop().create_task(
                        self._deliver(endpoint, claim, time.monotonic())
                    )
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            busy = routed or claimed or any(self._inflight.values())
            if busy:
                idle_since = now
            elif now - idle_since >= IDLE_S:
                return
            await asyncio.sleep(POLL_S if busy else POLL_S * 4)

    async def _finish(self) -> None:
        """Let the deliveries in flight end (each is bounded by the HTTP timeout)."""
        pending = [t for tasks in self._inflight.values() for t in tasks]
        if pending:
            await asyncio.wait(pending)

    async def _deliver(self, endpoint: Endpoint, claim: Claim, claimed_at: float) -> None:
        message = Message.decode(claim.message)
        s = self.settings
        # sent only while the claim's lease holds, with the timeout to spare
        token = transport.send_deadline.set(claimed_at + s.lease_ms / 1000 - s.http_timeout_s)
        try:
            headers = endpoints.headers(endpoint, message.change_id, message.body)
            response = await self.http.post(endpoint.url, content=message.body, headers=headers)
        except transport.DeadlinePassed:
            return  # the lease's end makes it due again: redelivered, same webhook-id
        except httpx.TimeoutException:
            self._failed(endpoint, claim, "timeout", None)
            return
        except httpx.HTTPError as exc:
            self._failed(endpoint, claim, f"error_{type(exc).__name__}", None)
            return
        finally:
            transport.send_deadline.reset(token)
        if response.is_success:
            lag_s = max(0.0, time.time() - message.change_ms / 1000)
            if self.outbox.done(endpoint.id, claim, lag_s):
                self.totals.delivered += 1
            return
        self._failed(endpoint, claim, f"http_{response.status_code}", retry_after(response))

    def _failed(self, endpoint: Endpoint, claim: Claim, outcome: str, after: float | None) -> None:
        label = outcome if outcome.startswith(("http_", "timeout")) else "error"
        delay = retry.backoff_ms(claim.tries, self.settings.retry_schedule_s, after)
        made = self.outbox.fail(endpoint.id, claim, label, delay)
        self.totals.failed += 1
        if made < 0:
            self.totals.dead += 1

    def _check_failing(self, found: list[Endpoint]) -> list[Endpoint]:
        """Disable an endpoint failing, without one success, for longer than
        PARTNERSYNC_ENDPOINT_DISABLE_AFTER_S (its changes keep queuing; alerted by the
        partnersync_endpoint_disabled metric)."""
        state = self.outbox.state([e.id for e in found if not e.disabled])
        now_ms = int(time.time() * 1000)
        limit_ms = self.settings.endpoint_disable_after_s * 1000
        for endpoint in found:
            failing = state.get(endpoint.id)
            since = failing.failing_since_ms if failing else None
            if since is not None and now_ms - since >= limit_ms:
                endpoints.disable(self.outbox.connection, endpoint.id,
                                  f"failing for {(now_ms - since) / 1000:.0f} s without a success")  # fmt: skip
                endpoint.disabled = True
                log.error("endpoint disabled: failing without a success", extra={
                    "endpoint": endpoint.id, "failingSeconds": round((now_ms - since) / 1000)})  # fmt: skip
        return found
