"""What every command uses: JSON output and the Redis connection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from partnersync.config import Settings


def to_json(obj: Any) -> str:
    return msgspec.json.encode(obj).decode()


def connect_redis(settings: Settings) -> Any:
    from partnersync import context

    return context.connect(settings)


@dataclass(frozen=True)
class Window:
    """What a paged listing's options ask for: where to start, the time window (ms), how
    many a page, and whether to print every page (--all; --json alone is a script's ask)."""

    cursor: Any
    since_ms: int | None
    until_ms: int | None
    limit: int
    every: bool


def window(args: Any, parse_cursor: Callable[[str], Any]) -> Window:
    """--cursor, --since, --until, --limit, --all and --json read once for every listing;
    a ValueError says what is wrong."""
    from datetime import UTC, datetime

    from partnersync import dlq

    now = datetime.now(UTC)
    cursor = parse_cursor(args.cursor) if args.cursor else None
    since, until = (
        int(dlq.parse_since(t, now).timestamp() * 1000) if t else None
        for t in (args.since, args.until)
    )
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    # --json without --limit/--cursor prints every match (the listing's contract for
    # scripts), a page at a time; a person at a terminal gets the first page
    every = bool(args.all or (args.json and args.limit is None and cursor is None))
    return Window(cursor, since, until, args.limit or (500 if every else 50), every)
