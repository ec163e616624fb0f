"""Newest-first pages over several sorted-set indexes at once (the entity store's
per-status indexes, the command journal's per-kind-and-state ones): each index gives at
most a page + 1 entries, so a page costs O(page × indexes), whatever the store holds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from partnersync import replies


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: its last entry's score (ms) and key."""

    ms: int
    key: str

    def encode(self) -> str:
        return f"{self.ms}.{self.key}"

    @classmethod
    def parse(cls, text: str, valid: Callable[[str], bool] = bool) -> Cursor:
        ms, sep, key = text.partition(".")
        if not sep or not ms.isdigit() or not valid(key):
            raise ValueError(f"not a cursor from a listing: {text!r}")
        return cls(int(ms), key)


@dataclass(frozen=True)
class Index:
    key: str  # the sorted set: member -> ms
    prefix: str = ""  # what makes a member the listed key (the entity key's partner:kind:)


def newest(
    connection: redis.Redis,
    indexes: Sequence[Index],
    *,
    high: int,
    low: int,
    limit: int,
    cursor: Cursor | None,
) -> tuple[list[tuple[int, str]], bool]:
    """The `limit` newest (ms, key) entries of `indexes` with low <= ms <= high after
    `cursor`, and whether more follow."""
    pipe = connection.pipeline(transaction=False)
    for index in indexes:
        pipe.zrange(index.key, high, low, desc=True, byscore=True, offset=0, num=limit + 1,
                    withscores=True)  # fmt: skip
    candidates: list[tuple[int, str]] = []
    for index, got in zip(indexes, pipe.execute(), strict=True):
        candidates += _after(connection, index, got, high, low, limit, cursor)
    candidates.sort(reverse=True)
    return candidates[:limit], len(candidates) > limit


def _after(
    connection: redis.Redis,
    index: Index,
    got: Any,
    high: int,
    low: int,
    limit: int,
    cursor: Cursor | None,
) -> list[tuple[int, str]]:
    """An index's first `limit` + 1 entries after `cursor`. Entries tied with the cursor's
    ms that it already showed are skipped; if ties fill the first read, the index is read
    further (rare: it takes that many entries within one millisecond)."""
    out: list[tuple[int, str]] = []
    offset = 0
    while True:
        for member, score in got:
            entry = (int(score), index.prefix + replies.text(member))
            if cursor is None or entry < (cursor.ms, cursor.key):
                out.append(entry)
        if len(out) > limit or len(got) < limit + 1:
            return out[: limit + 1]
        offset += len(got)
        got = connection.zrange(index.key, high, low, desc=True, byscore=True, offset=offset,
                                num=limit + 1, withscores=True)  # fmt: skip
