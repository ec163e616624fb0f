"""The entity store's own bounds (#17, in part): an entity's history keeps the latest
PARTNERSYNC_HISTORY_MAX transitions; the change stream keeps them all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis

from partnersync import keys, store
from partnersync.config import ConfigError, load
from schemas.store import EntityRecord, Transition


def test_history_is_capped_oldest_first(r: redis.Redis) -> None:
    key = "tradevest:natural-person:np-1"
    statuses = ["CREATED", "PENDING", "REVIEW", "ACTIVE", "DECEASED"]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    previous = None
    for n, status in enumerate(statuses):
        at = start + timedelta(minutes=n)
        record = EntityRecord(key=key, partner="tradevest", kind="natural-person", id="np-1",
                              status=status, modifiedOn=at, updatedAt=at)  # fmt: skip
        transition = Transition(key=key, from_=previous, to=status, modifiedOn=at, at=at)
        with r.pipeline() as pipe:
            store.write(pipe, record, transition, changes_maxlen=1000, history_max=3)
            pipe.execute()
        previous = status
    assert [t.to for t in store.history(r, key)] == ["REVIEW", "ACTIVE", "DECEASED"]
    assert r.xlen(keys.CHANGES) == len(statuses)  # the stream has every transition


def test_history_cap_is_a_setting() -> None:
    assert load({"PARTNERSYNC_HISTORY_MAX": "7"}, state_fallback=False).history_max == 7
    with pytest.raises(ConfigError, match="PARTNERSYNC_HISTORY_MAX=0"):
        load({"PARTNERSYNC_HISTORY_MAX": "0"}, state_fallback=False)
