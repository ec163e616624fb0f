"""The receiver's front: webhook paths to their handler, the rest to Starlette, and a
failing handler answered 500 with a JSON body (the sender retries), driven as ASGI."""

from __future__ import annotations

import asyncio
import json
import logging

from receiver.app import Receiver


async def _call(app, method: str, path: str) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": []}
    await app(scope, receive, send)
    return sent


def test_routes_and_a_failing_handler(caplog) -> None:
    seen: list[str] = []

    async def failing(scope, receive, send) -> None:
        seen.append("webhook")
        raise RuntimeError("bug")

    async def other(scope, receive, send) -> None:
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = Receiver(failing, other)
    with caplog.at_level(logging.ERROR, logger="partnersync.receiver"):
        failed = asyncio.run(_call(app, "POST", "/webhooks/tradevest/transfer-notification"))
    assert failed[0]["status"] == 500
    assert json.loads(failed[1]["body"])["error"] == "internal_error"
    assert any(r.exc_info for r in caplog.records)

    assert asyncio.run(_call(app, "GET", "/healthz"))[0]["status"] == 200
    wrong = asyncio.run(_call(app, "PUT", "/webhooks/tradevest/transfer-notification"))
    assert wrong[0]["status"] == 405 and (b"allow", b"POST") in wrong[0]["headers"]
    assert seen == ["webhook", "/healthz"]
