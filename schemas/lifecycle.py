"""Entity lifecycles: which status may follow which, and whether an observation may
overwrite the stored state.

Two guards keep newer state from being overwritten:
- an observation whose `modifiedOn` is older than the stored one is stale;
- a status from which the stored status is reachable is a step backwards.
Statuses outside the lifecycle are kept open: stored when newer, flagged as unknown.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime

import msgspec


class Decision(enum.Enum):
    APPLY = "apply"  # a forward transition (or the first observation)
    REFRESH = "refresh"  # same status, newer data
    SAME = "same"  # nothing new
    STALE = "stale"  # older modifiedOn than stored
    BACKWARD = "backward"  # the stored status already lies beyond this one
    UNEXPECTED = "unexpected"  # not reachable either way; applied because it is newer
    CONFLICT = "conflict"  # not reachable either way and not newer: kept as it was

    @property
    def changes_status(self) -> bool:
        return self in (Decision.APPLY, Decision.UNEXPECTED)

    @property
    def writes(self) -> bool:
        return self in (Decision.APPLY, Decision.UNEXPECTED, Decision.REFRESH)


class Observation(msgspec.Struct, frozen=True):
    status: str
    modifiedOn: datetime | None = None


class Lifecycle:
    """A directed graph of statuses; `transitions[s]` are the statuses that may follow s."""

    def __init__(self, initial: str, transitions: Mapping[str, tuple[str, ...]]):
        self.initial = initial
        self.transitions = dict(transitions)
        states = set(self.transitions) | {s for t in self.transitions.values() for s in t}
        self.states = frozenset(states)
        self._reach = {s: self._reachable(s) for s in states}

    def _reachable(self, start: str) -> frozenset[str]:
        seen: set[str] = set()
        todo = list(self.transitions.get(start, ()))
        while todo:
            s = todo.pop()
            if s not in seen:
                seen.add(s)
                todo.extend(self.transitions.get(s, ()))
        return frozenset(seen)

    @property
    def ordered(self) -> bool:
        """False for a kind with no documented status order: modifiedOn alone decides."""
        return bool(self.transitions)

    def known(self, status: str) -> bool:
        return status in self.states or not self.ordered

    def terminal(self, status: str) -> bool:
        return self.ordered and status in self.states and not self.transitions.get(status)

    def reaches(self, source: str, target: str) -> bool:
        return target in self._reach.get(source, frozenset())

    def decide(self, stored: Observation | None, seen: Observation) -> Decision:
        if stored is None:
            return Decision.APPLY
        newer = _newer(seen.modifiedOn, stored.modifiedOn)
        if newer is False and seen.modifiedOn != stored.modifiedOn:
            return Decision.STALE
        if seen.status == stored.status:
            return Decision.REFRESH if newer else Decision.SAME
        if not self.ordered:
            return Decision.APPLY if newer or newer is None else Decision.CONFLICT
        if self.reaches(stored.status, seen.status):
            return Decision.APPLY
        if self.reaches(seen.status, stored.status):
            return Decision.BACKWARD
        return Decision.UNEXPECTED if newer else Decision.CONFLICT


def _newer(a: datetime | None, b: datetime | None) -> bool | None:
    """True if a > b, False if a <= b, None when either is unknown."""
    if a is None or b is None:
        return None
    return a > b
