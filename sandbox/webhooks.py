"""Webhook delivery to the URLs and headers registered with POST /webhooks.

At-least-once with retries; faults may duplicate, reorder or drop a delivery. What could
not be delivered is kept for GET /undelivered-webhooks, as the platform does.
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


class Deliverer:
    def __init__(self, faults: Faults, *, attempts: int = 5, backoff_s: float = 0.2):
        self.faults = faults
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.registrations: dict[str, dict[str, Any]] = {}  # eventType -> Webhook
        self.undelivered: list[dict[str, Any]] = []
        self.sent = 0
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
                if response.status_code < 300:
                    self.sent += 1
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(self.backoff_s * (2**attempt))
        self._undelivered(event_type, body, entity_id, "FAILED")
