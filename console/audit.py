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


def latest(connection: redis.Redis, n: int = 200) -> list[dict[str, str]]:
    entries: Any = connection.xrevrange(keys.AUDIT, count=n)
    return [{replies.text(k): replies.text(v) for k, v in fields.items()} for _, fields in entries]
