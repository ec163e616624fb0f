"""The transfer lifecycle: forward only, newer modifiedOn wins, unknown statuses kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from schemas.lifecycle import Decision, Observation
from schemas.tradevest.transfers import TRANSFER_LIFECYCLE as L

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PATHS = [
    ["RECEIVED", "PENDING", "PROCESSED"],
    ["RECEIVED", "PENDING", "REJECTED"],
    ["RECEIVED", "INVALID"],
]


def fold(observations: list[Observation]) -> Observation | None:
    stored: Observation | None = None
    for seen in observations:
        if L.decide(stored, seen).writes:
            stored = seen
    return stored


def test_forward_transitions_apply() -> None:
    received = Observation("RECEIVED", T0)
    assert L.decide(None, received) is Decision.APPLY
    assert L.decide(received, Observation("PENDING", T0 + timedelta(1))) is Decision.APPLY
    assert L.decide(received, Observation("PROCESSED", T0 + timedelta(2))) is Decision.APPLY


def test_backward_transition_never_overwrites() -> None:
    processed = Observation("PROCESSED", T0 + timedelta(seconds=2))
    # even with a newer modifiedOn, PENDING is behind PROCESSED
    assert (
        L.decide(processed, Observation("PENDING", T0 + timedelta(seconds=3))) is Decision.BACKWARD
    )


def test_stale_event_never_overwrites() -> None:
    pending = Observation("PENDING", T0 + timedelta(seconds=2))
    assert L.decide(pending, Observation("PROCESSED", T0 + timedelta(seconds=1))) is Decision.STALE


def test_same_status_newer_data_refreshes() -> None:
    pending = Observation("PENDING", T0)
    assert L.decide(pending, Observation("PENDING", T0)) is Decision.SAME
    assert L.decide(pending, Observation("PENDING", T0 + timedelta(1))) is Decision.REFRESH


def test_terminal_siblings() -> None:
    processed = Observation("PROCESSED", T0)
    assert L.terminal("PROCESSED") and L.terminal("REJECTED") and L.terminal("INVALID")
    assert not L.terminal("PENDING")
    assert L.decide(processed, Observation("REJECTED", T0)) is Decision.CONFLICT
    assert L.decide(processed, Observation("REJECTED", T0 + timedelta(1))) is Decision.UNEXPECTED


def test_unknown_status_is_kept_when_newer() -> None:
    pending = Observation("PENDING", T0)
    decision = L.decide(pending, Observation("RETURNED", T0 + timedelta(1)))
    assert decision is Decision.UNEXPECTED and decision.writes
    assert not L.known("RETURNED")


@given(
    path=st.sampled_from(PATHS),
    data=st.data(),
)
def test_any_order_and_duplication_ends_in_the_last_state(path: list[str], data) -> None:
    timeline = [Observation(s, T0 + timedelta(seconds=i)) for i, s in enumerate(path)]
    deliveries = data.draw(
        st.lists(st.sampled_from(timeline), min_size=1, max_size=12).flatmap(
            lambda extra: st.permutations(timeline + extra)
        )
    )
    assert fold(deliveries) == timeline[-1]


@given(path=st.sampled_from(PATHS), data=st.data())
def test_without_modified_on_the_graph_still_orders(path: list[str], data) -> None:
    # Observations lacking modifiedOn (rejected updates, older APIs): graph order decides.
    timeline = [Observation(s, None) for s in path]
    deliveries = data.draw(st.permutations(timeline + timeline))
    assert fold(deliveries) == timeline[-1]
