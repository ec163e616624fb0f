"""Webhook delivery to the URLs and headers registered with POST /webhooks.

At-least-once with retries; faults may duplicate, reorder or drop a delivery. What could
not be delivered is kept for GET /undelivered-webhooks, as the platform does.

The partner's answer (platform-api-overview §3): `200 OK`, or `400` with an ErrorMessage
body. A 200 is delivered; a 400 is the partner refusing it (kept as undelivered, not
retried); any other answer is retried, then kept [inferred: the documents name no other].
Answers outside the documented two (and 400s without an ErrorMessage) are counted as
`undocumented` in the ledger.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

from sandbox.faults import Faults


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


log = logging.getLogger("sandbox.webhooks")


def _is_error_message(content: bytes) -> bool:
    """An ErrorMessage (tradevest-api.md §5): message, responseType, requestId required."""
    try:
        body = json.loads(content)
    except ValueError:
        return False
    required = ("message", "responseType", "requestId")
    return isinstance(body, dict) and all(isinstance(body.get(k), str) for k in required)


class Deliverer:
    def __init__(self, faults: Faults, *, attempts: int = 5, backoff_s: float = 0.2):
        self.faults = faults
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.registrations: dict[str, dict[str, Any]] = {}  # eventType -> Webhook
        self.undelivered: list[dict[str, Any]] = []
        self.sent = 0
        self.answers: dict[str, int] = {}  # the partner's answers by status
        self.undocumented = 0
        self.client: httpx.AsyncClient | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.client = httpx.AsyncClient(timeout=5.0)

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.client is not None:
            await self.client.aclose()

    def notify(self, event_type: str, body: dict[str, Any], entity_id: str) -> None:
        """Queue a notification; delivery runs in the background."""
        registration = self.registrations.get(event_type)
        if registration is None:
            self._undelivered(event_type, body, entity_id, "NO_WEBHOOK")
            return
        if self.faults.roll("drop_webhook"):
            self._undelivered(event_type, body, entity_id, "DROPPED")
            return
        copies = 2 if self.faults.roll("duplicate") else 1
        for _ in range(copies):
            delay = self.faults.random.uniform(0.05, 0.5) if self.faults.roll("reorder") else 0.0
            task = asyncio.get_running_loop().create_task(
                self._deliver(registration, event_type, body, entity_id, delay)
            )
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _undelivered(
        self, event_type: str, body: dict[str, Any], entity_id: str, reason: str
    ) -> None:
        self.undelivered.append(
            {
                "id": f"{len(self.undelivered) + 1}",
                "eventType": event_type,
                "entityId": entity_id,
                "payload": body,
                "reason": reason,
                "createdOn": _stamp(),
            }
        )

    async def _deliver(
        self,
        registration: dict[str, Any],
        event_type: str,
        body: dict[str, Any],
        entity_id: str,
        delay: float,
    ) -> None:
        if delay:
            await asyncio.sleep(delay)
        headers = {h["name"]: h["value"] for h in registration.get("headers", [])}
        headers["Content-Type"] = "application/json"
        content = json.dumps(body).encode()
        assert self.client is not None
        for attempt in range(self.attempts):
            try:
                response = await self.client.post(
                    registration["url"], content=content, headers=headers
                )
                status = response.status_code
                self.answers[str(status)] = self.answers.get(str(status), 0) + 1
                if status == 200:
                    self.sent += 1
                    return
                if status == 400:
                    if not _is_error_message(response.content):
                        self.undocumented += 1
                    self._undelivered(event_type, body, entity_id, "REFUSED")
                    return
                self.undocumented += 1
            except httpx.HTTPError:
                pass
            await asyncio.sleep(self.backoff_s * (2**attempt))
        self._undelivered(event_type, body, entity_id, "FAILED")
