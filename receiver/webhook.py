"""`POST /webhooks/{partner}/{event}`: a partner delivery, checked, stored, answered.

One handler for every partner that pushes webhooks (its `Partner.webhooks`, through the
catalog): the route's first segment names the partner, the second its event type. A
plain ASGI app on the hot path: no Request/Response objects, no router. An accepted
delivery is answered as its partner documents (`Webhooks.status`, `body`), and so is a
refused one (`Webhooks.problem`) once the route names a partner.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.exceptions import RedisError
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from partnersync.inbox import kept_headers
from partnersync.replication import NotReplicated
from partnersync.webhooks import Authenticator, WebhookEvent, Webhooks
from receiver.allowlist import SourceAllowlist
from receiver.body import BodyTooLarge, ClientGone, read_body
from receiver.durability import Durability
from receiver.intake import Intake
from receiver.problems import problem_body
from schemas.dedupe import digest
from schemas.intake import Unusable

log = logging.getLogger("partnersync.receiver")

PREFIX = "/webhooks/"
OTHER = "OTHER"  # the label (metrics, counters) of every event type its partner does not document
OUTCOME_HEADER = b"partnersync-outcome"  # accepted | duplicate | parked
DELIVERY_HEADER = b"partnersync-delivery-id"  # the inbox entry: `partnersync inbox show`

_EVENT_PATH = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")  # a partner names its routes
_JSON = (b"content-type", b"application/json")
_RETRY_LATER = (b"retry-after", b"5")
_EMPTY = (b"content-length", b"0")


def problem_body_of(status: int, error: str, detail: str) -> bytes:
    """The receiver's own refusal body, for a partner that documents none."""
    return problem_body(error, detail)


class Refusal(Exception):
    """A delivery answered with a 4xx/5xx problem body; `outcome` labels the counter."""

    def __init__(self, outcome: str, status: int, error: str, detail: str, retry: bool = False):
        self.outcome, self.status, self.error, self.detail = outcome, status, error, detail
        self.retry = retry


class Outcomes:
    """The receiver's own metrics: answers by event type and outcome, and time to accept."""

    def __init__(self, registry: CollectorRegistry):
        self.responses = Counter(
            "partnersync_receiver_responses", "Webhook deliveries answered, by event type and outcome",
            ["event_type", "outcome"], registry=registry,
        )  # fmt: skip
        self.intake_seconds = Histogram(
            "partnersync_intake_seconds", "Time to answer an accepted delivery",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0), registry=registry,
        )  # fmt: skip
        self._children: dict[tuple[str, str], Any] = {}

    def count(self, event_type: str, outcome: str) -> None:
        # labels() takes a lock and builds a key per call: keep the children
        child = self._children.get((event_type, outcome))
        if child is None:
            child = self._children[(event_type, outcome)] = self.responses.labels(
                event_type, outcome
            )
        child.inc()


class Outage:
    """Logs a Redis outage once when it starts and once when it ends, with the number of
    deliveries answered 503 meanwhile (not a line per request: thousands a minute)."""

    def __init__(self, logger: logging.Logger):
        self.log = logger
        self.refusals = 0
        self.since = 0.0

    def refused(self, exc: BaseException) -> None:
        if not self.refusals:
            self.since = time.monotonic()
            self.log.warning(
                "redis unavailable: answering 503 until it is back",
                extra={"error": type(exc).__name__},
            )
        self.refusals += 1

    def over(self) -> None:
        if self.refusals:
            self.log.warning(
                "redis available again",
                extra={
                    "refused": self.refusals,
                    "seconds": round(time.monotonic() - self.since, 1),
                },
            )
            self.refusals = 0


class PartnerRoute(NamedTuple):
    """A partner that pushes webhooks, with its authenticator built from the settings."""

    webhooks: Webhooks
    auth: Authenticator


class PartnerWebhook:
    """Checks, in order: the partner and event route, source address, authentication
    (before the body when it can), media type, size, the body read by the partner's
    `prepare`; then one intake round trip shared with the requests of the same moment,
    and the partner's acknowledgement only after it returned."""

    def __init__(
        self,
        routes: dict[str, PartnerRoute],
        allowlist: SourceAllowlist,
        intake: Intake,
        outcomes: Outcomes,
        *,
        max_body: int,
        max_entities: int = 1000,
    ):
        self.routes, self.allowlist, self.intake, self.outcomes = (
            routes,
            allowlist,
            intake,
            outcomes,
        )
        self.outage = Outage(log)
        self.durability = Durability("none")  # the app sets the configured one
        self.max_body = max_body
        self.max_entities = max_entities

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        partner, _, path = scope["path"][len(PREFIX) :].partition("/")
        route = self.routes.get(partner)
        if route is None:
            await send_problem(send, 404, problem_body("unknown_route", "no such webhook route"))
            return
        render = route.webhooks.problem or problem_body_of
        if not _EVENT_PATH.match(path):
            await send_problem(send, 404, render(404, "unknown_route", "no such webhook route"))
            return
        event = route.webhooks.events.get(path)
        event_type = route.webhooks.event_type(path, event)  # one table lookup a delivery
        # metric labels only from the known event types: made-up paths add no series
        label = event.name if event else OTHER
        try:
            outcome, delivery_id = await self.accept(scope, receive, route, event, event_type)
        except ClientGone:
            return
        except Refusal as refusal:
            self.outcomes.count(label, refusal.outcome)
            headers = [_RETRY_LATER] if refusal.retry else []
            body = render(refusal.status, refusal.error, refusal.detail)
            await send_problem(send, refusal.status, body, headers)
            return
        self.outcomes.count(label, outcome)
        self.outcomes.intake_seconds.observe(time.perf_counter() - started)
        if outcome == "parked":
            log.warning(
                "parked delivery", extra={"eventType": event_type, "deliveryId": delivery_id}
            )
        headers = [(OUTCOME_HEADER, outcome.encode()), (DELIVERY_HEADER, delivery_id.encode())]
        ack = route.webhooks
        if ack.body:
            headers += [_JSON, (b"content-length", str(len(ack.body)).encode())]
        elif ack.status != 204:
            headers.append(_EMPTY)
        await send({"type": "http.response.start", "status": ack.status, "headers": headers})
        await send({"type": "http.response.body", "body": ack.body})

    async def accept(
        self,
        scope: Scope,
        receive: Receive,
        route: PartnerRoute,
        event: WebhookEvent | None,
        event_type: str,
    ) -> tuple[str, str]:
        """(outcome, delivery id) of a stored delivery, or raises Refusal."""
        headers = Headers(scope=scope)
        client = scope.get("client")
        if not self.allowlist.allows(client[0] if client else None):
            raise Refusal("forbidden", 403, "forbidden", "source address not allowed")
        auth = route.auth
        if not auth.needs_body:
            self.authenticate(auth, headers)
        if not _is_json(headers.get("content-type")):
            raise Refusal(
                "bad_request", 415, "unsupported_media_type", "body must be application/json"
            )
        try:
            body = await read_body(headers, receive, self.max_body)
        except BodyTooLarge:
            raise Refusal(
                "bad_request", 413, "payload_too_large", f"body exceeds {self.max_body} bytes"
            ) from None
        if auth.needs_body:
            self.authenticate(auth, headers, body)
        try:
            entities, dedupe = route.webhooks.prepare(event, event_type, body, self.max_entities)
        except Unusable as exc:
            raise Refusal("bad_request", 400, exc.error, exc.detail) from None
        delivery = auth.delivery_key(headers)
        if delivery is not None:
            dedupe = digest("webhook-id", delivery)
        if self.durability.refusing:
            raise Refusal(
                "unavailable", 503, "unavailable",
                "event store cannot store durably (redis does not fsync), retry later", True,
            )  # fmt: skip
        try:
            accepted, delivery_id = await self.intake.accept(
                event_type=event_type, body=body, entities=entities, dedupe=dedupe,
                label=event.name if event else OTHER,
                headers=kept_headers(scope["headers"], auth.credentials),
            )  # fmt: skip
        except NotReplicated as exc:
            self.outage.refused(exc)
            raise Refusal(
                "unavailable", 503, "unavailable", "not yet on enough replicas, retry later", True
            ) from None
        except (RedisError, OSError) as exc:
            self.outage.refused(exc)
            raise Refusal(
                "unavailable", 503, "unavailable", "event store unavailable, retry later", True
            ) from None
        self.outage.over()
        # accepted: will be reconciled; parked: kept, nothing to reconcile
        return ("accepted" if entities else "parked") if accepted else "duplicate", delivery_id

    def authenticate(self, auth: Authenticator, headers: Headers, body: bytes = b"") -> None:
        reason = auth.check(headers, body)
        if reason:
            raise Refusal("auth_failed", 401, "unauthorized", reason)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def send_problem(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    start = [_JSON, (b"content-length", str(len(body)).encode()), *(headers or ())]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
