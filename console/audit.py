"""The audit stream: every operator action in the console (who, what, when), kept in Redis
(`ps:audit`, trimmed to about 100,000 entries) and shown on the console's audit page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis

from partnersync import keys, replies

MAXLEN = 100_000


def record(connection: redis.Redis, user: str, action: str, target: str, detail: str = "") -> None:
    fields: dict[Any, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "user": user,
        "action": action,
        "target": target,
        "detail": detail,
    }
    connection.xadd(keys.AUDIT, fields, maxlen=MAXLEN, approximate=True)


def page(
    connection: redis.Redis,
    *,
    who: str | None = None,
    what: str | None = None,
    since_ms: int | None = None,
    before: str | None = None,
    limit: int = 100,
    budget: int = 5000,
) -> tuple[list[dict[str, str]], str | None]:
    """The newest entries matching who (the user) and what (the action) since `since_ms`,
    older than stream id `before`: read 500 at a time until `limit` match or `budget` were
    read. Returns them and the id to go on from (None: nothing older is left)."""
    found: list[dict[str, str]] = []
    high = f"({before}" if before else "+"
    low = str(since_ms) if since_ms else "-"
    read = 0
    while len(found) < limit and read < budget:
        batch: Any = connection.xrevrange(keys.AUDIT, high, low, count=500)
        if not batch:
            return found, None
        for entry_id, fields in batch:
            read += 1
            high = f"({replies.text(entry_id)}"
            entry = {replies.text(k): replies.text(v) for k, v in fields.items()}
            if (who is None or entry.get("user") == who) and (
                what is None or entry.get("action") == what
            ):
                found.append(entry)
                if len(found) == limit:
                    break
        if len(batch) < 500 and len(found) < limit:
            return found, None
    return found, high[1:]
