"""OAuth tokens, webhook subscriptions and the two recovery endpoints (missed and undelivered notifications)."""

from __future__ import annotations

import json
import re
import secrets
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.tradevest.contract import (
    CLIENT_ID,
    CLIENT_SECRET,
    EVENT_TYPE_ENUM,
    TOKEN_TTL_S,
    Checker,
    Invalid,
    error,
    now_iso,
    page_bounds,
)
from sandbox.tradevest.platform import Platform


class Subscriptions(Platform):
    async def token(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("latin-1")).items()}
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL_S}
        )

    async def webhooks(self, request: Request) -> Response:
        if not self.authorized(request):
            return error(401, "Unauthorized", "UNAUTHORIZED")
        if request.method == "GET":
            return JSONResponse(list(self.deliverer.registrations.values()))
        try:
            check = Checker(json.loads(await request.body()))
        except (ValueError, Invalid):
            return error(400, "Body must be a JSON object", "BAD_REQUEST")
        body = check.body
        if body.get("eventType") not in EVENT_TYPE_ENUM:
            check.bad("eventType", "ENUM", "must be an EventTypeEnum value")
        url = body.get("url")
        # The platform requires HTTPS; the sandbox also lets loopback http through.
        if not isinstance(url, str) or not url.startswith(
            ("https://", "http://127.", "http://localhost")
        ):
            check.bad("url", "PATTERN", "The URL must be HTTPS.")
        headers = body.get("headers", [])
        if not isinstance(headers, list) or len(headers) > 5:
            check.bad("headers", "MAX_ITEMS", "at most 5")
        elif any(
            not isinstance(h, dict) or not re.match(r"^\S+$", str(h.get("name", "")))
            for h in headers
        ):
            check.bad("headers", "PATTERN", "name must match ^\\S+$")
        if check.problems:
            return error(400, "Validation failed", "VALIDATION_ERROR", check.problems)
        stamp = now_iso()
        previous = self.deliverer.registrations.get(body["eventType"])
        self.deliverer.registrations[body["eventType"]] = {
            "createdOn": previous["createdOn"] if previous else stamp,
            "modifiedOn": stamp,
            "eventType": body["eventType"],
            "url": url,
            "headers": headers,
        }
        return Response(status_code=200)

    async def webhook(self, request: Request) -> Response:
        if not self.authorized(request):
            return error(401, "Unauthorized", "UNAUTHORIZED")
        event_type = request.path_params["eventType"]
        registration = self.deliverer.registrations.get(event_type)
        if registration is None:
            return error(404, "Webhook not found", "NOT_FOUND")
        if request.method == "DELETE":
            del self.deliverer.registrations[event_type]
            return Response(status_code=200)
        return JSONResponse(registration)

    async def webhooks_missing(self, request: Request) -> Response:
        """[inferred item shape] {eventType, payload, createdOn} of notifications not delivered."""
        if not self.authorized(request):
            return error(401, "Unauthorized", "UNAUTHORIZED")
        return JSONResponse(
            [{"eventType": u["eventType"], "payload": u["payload"], "createdOn": u["createdOn"]}
             for u in self.deliverer.undelivered]
        )  # fmt: skip

    async def undelivered_webhooks(self, request: Request) -> Response:
        """Cursor-paged, `startDate` filter; [inferred response] {data, pagination}."""
        if not self.authorized(request):
            return error(401, "Unauthorized", "UNAUTHORIZED")
        q = request.query_params
        try:
            limit, start = page_bounds(q)
        except ValueError:
            return error(400, "Bad cursor or limit", "BAD_REQUEST")
        items = self.deliverer.undelivered
        if "startDate" in q:
            items = [u for u in items if u["createdOn"] >= q["startDate"]]
        page = items[start : start + limit]
        cursor = str(start + limit) if start + limit < len(items) else None
        return JSONResponse({"data": page, "pagination": {"cursor": cursor, "limit": limit}})
