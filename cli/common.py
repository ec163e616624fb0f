"""What every command uses: JSON output and the Redis connection."""

from __future__ import annotations

from typing import Any

import msgspec

from partnersync.config import Settings


def to_json(obj: Any) -> str:
    return msgspec.json.encode(obj).decode()


def connect_redis(settings: Settings) -> Any:
    from partnersync import context

    return context.connect(settings)
