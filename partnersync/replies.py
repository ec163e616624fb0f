"""Redis replies as the engine reads them.

redis-py types a reply `bytes | str` (which one depends on `decode_responses`); the
engine's connections never decode, so a reply is bytes, and these say so once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def text(reply: Any) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def optional_text(reply: Any) -> str | None:
    return None if reply is None else text(reply)


def texts(replies: Iterable[Any]) -> list[str]:
    return [text(r) for r in replies]
