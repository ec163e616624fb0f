"""apply(): the pure core of reconciliation, for every kind."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partners.tradevest import notes
from partnersync import config, inbox, partner
from partnersync.decide import FROM_NOTIFICATIONS, NotVisible, apply, decode_event
from schemas.lifecycle import Lifecycle, Observation
from schemas.store import EntityRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
KINDS = partner.load(config.Settings().partners).kinds
GET_KINDS = sorted(k for k, kind in KINDS.items() if kind.fetched)


def walks(lifecycle: Lifecycle) -> st.SearchStrategy[list[str]]:
    """A random forward path through the lifecycle, from its initial status to a terminal."""

    @st.composite
    def walk(draw) -> list[str]:
        path = [lifecycle.initial]
        while lifecycle.transitions.get(path[-1]) and len(path) < 8:
            options = [s for s in lifecycle.transitions[path[-1]] if s not in path]
            if not options:
                break
            path.append(draw(st.sampled_from(options)))
        return path

    return walk()


@settings(max_examples=60)
@given(kind=st.sampled_from(sorted(KINDS)), data=st.data())
def test_any_permutation_and_duplication_ends_in_the_in_order_state(kind, data) -> None:
    lifecycle = KINDS[kind].lifecycle
    if not lifecycle.ordered:
        path = data.draw(
            st.lists(st.sampled_from(["CREATED", "UPDATED", "ACTIVE"]), min_size=1, max_size=5)
        )
    else:
        path = data.draw(walks(lifecycle))
    timeline = [Observation(s, T0 + timedelta(seconds=i)) for i, s in enumerate(path)]
    extra = data.draw(st.lists(st.sampled_from(timeline), max_size=6))
    deliveries = data.draw(st.permutations(timeline + extra))

    def fold(observations: list[Observation]) -> Observation | None:
        stored = None
        for seen in observations:
            if lifecycle.decide(stored, seen).writes:
                stored = seen
        return stored

    assert fold(deliveries) == fold(timeline) == timeline[-1]


def event(body: dict, type_: str, n: int = 0):
    return decode_event(notes.read, f"d{n}", inbox.Record(type_, json.dumps(body).encode(), None))


@given(st.permutations(["CREATED", "UPDATED", "ACTIVE", "BLOCKED"]))
def test_notification_only_kind_mirrors_the_newest_notification(order) -> None:
    kind = KINDS[("tradevest", "proxy")]
    pid = str(uuid.uuid4())
    stamps = {
        s: (T0 + timedelta(minutes=i)).isoformat()
        for i, s in enumerate(["CREATED", "UPDATED", "ACTIVE", "BLOCKED"])
    }
    stored = None
    for n, status in enumerate(order):
        body = {
            "proxyId": pid,
            "status": status,
            "modifiedOn": stamps[status],
            "notificationType": "UPDATED",
        }
        applied = apply(
            kind,
            f"tradevest:proxy:{pid}",
            stored,
            FROM_NOTIFICATIONS,
            [event(body, "PROXY_NOTIFICATION", n)],
            NOW,
        )
        stored = applied.record or stored
    assert stored.status == "BLOCKED"
    assert json.loads(bytes(stored.data))["status"] == "BLOCKED"


def test_404_after_invalid_webhook_is_recorded_as_purged_with_the_reason() -> None:
    kind = KINDS[("tradevest", "traditional-order")]
    oid = str(uuid.uuid4())
    body = {"orderId": oid, "status": "INVALID", "modifiedOn": T0.isoformat(), "notificationType": "VALIDATION_ERROR",
            "validationError": {"errorType": "REQUESTOR_NOT_ACTIVE", "description": "Requestor-ID is not active"}}  # fmt: skip
    applied = apply(kind, f"tradevest:traditional-order:{oid}", None, None,
                    [event(body, "TRADITIONAL_ASSET_ORDER_NOTIFICATION")], NOW)  # fmt: skip
    assert applied.record.status == "INVALID" and applied.record.purged
    assert applied.record.refusal.code == "REQUESTOR_NOT_ACTIVE"


def test_404_for_an_entity_in_a_live_state_is_retried_not_purged() -> None:
    kind = KINDS[("tradevest", "transfer")]
    tid = str(uuid.uuid4())
    stored = EntityRecord(key=f"tradevest:transfer:{tid}", partner="tradevest", kind="transfer", id=tid,
                          status="PENDING", modifiedOn=T0, updatedAt=T0)  # fmt: skip
    with pytest.raises(NotVisible):
        apply(kind, stored.key, stored, None, [], NOW)
    received = msgspec.structs.replace(stored, status="RECEIVED")
    assert apply(kind, stored.key, received, None, [], NOW).record.purged


@pytest.mark.parametrize("kind", GET_KINDS)
def test_every_get_kind_has_a_lifecycle_and_a_struct(kind) -> None:
    spec = KINDS[kind]
    assert spec.lifecycle.ordered and spec.lifecycle.initial in spec.lifecycle.states
    assert spec.decoder is not None and "{id}" in spec.path


# cm.yaml's SignUpStatusResponse example reasons; Saxo's statuses carry no modification time
CM_PENDING = {"ClientKey": "d2-PzdC5wIPy1284wD-rRA==", "OnboardingState": "Pending",
              "PendingReasons": [{"PendingField": "Proof of identity",
                                  "Reasons": ["Expired", "Missing Date of Birth"]}]}  # fmt: skip


def signup_observed(body: dict) -> tuple[object, msgspec.Raw]:
    kind = KINDS[("saxo", "signup")]
    raw = msgspec.json.encode(body)
    return msgspec.json.decode(raw, type=kind.struct), msgspec.Raw(raw)


def test_a_pending_signups_new_reasons_are_stored() -> None:
    """Same status, new PendingReasons: stored (#35: it was SAME, nothing written)."""
    kind = KINDS[("saxo", "signup")]
    key = "saxo:signup:" + CM_PENDING["ClientKey"]
    first = apply(kind, key, None, signup_observed(CM_PENDING), [], T0).record
    fewer = {
        **CM_PENDING,
        "PendingReasons": [{"PendingField": "Proof of identity", "Reasons": ["Expired"]}],
    }
    applied = apply(kind, key, first, signup_observed(fewer), [], NOW)
    assert applied.record is not None and applied.transition is None
    assert json.loads(bytes(applied.record.data))["PendingReasons"][0]["Reasons"] == ["Expired"]
    assert (
        apply(kind, key, applied.record, signup_observed(fewer), [], NOW).record is None
    )  # nothing new


def test_a_pending_signup_goes_back_to_in_progress() -> None:
    """Pending asks the broker to act; then Saxo processes the application again."""
    kind = KINDS[("saxo", "signup")]
    key = "saxo:signup:" + CM_PENDING["ClientKey"]
    pending = apply(kind, key, None, signup_observed(CM_PENDING), [], T0).record
    progress = {"ClientKey": CM_PENDING["ClientKey"], "OnboardingState": "InProgress"}
    applied = apply(kind, key, pending, signup_observed(progress), [], NOW)
    assert applied.record.status == "InProgress"
    assert (applied.transition.from_, applied.transition.to) == ("Pending", "InProgress")
