"""Dedupe keys: two deliveries collapse only when they carry the same information."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from schemas.tradevest.events import BY_NAME

TRANSFER = BY_NAME["TRANSFER_NOTIFICATION"]
LABELS = BY_NAME["LABELS_UPDATE_NOTIFICATION"]

statuses = st.sampled_from(["RECEIVED", "PROCESSED", "REJECTED", "INVALID", "PENDING"])
stamps = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
bodies = st.fixed_dictionaries(
    {
        "transferId": st.uuids().map(str),
        "notificationType": st.sampled_from(["CREATED", "UPDATED"]),
        "status": statuses,
        "modifiedOn": stamps.map(lambda d: d.isoformat()),
    }
)


def key_of(event, body: dict) -> str | None:
    notification = event.decoder.decode(msgspec.json.encode(body))
    return event.dedupe_digest(notification, event.entity_ids(notification))


@given(bodies, bodies)
def test_different_content_never_collapses(a: dict, b: dict) -> None:
    assert (key_of(TRANSFER, a) == key_of(TRANSFER, b)) == (
        TRANSFER.decoder.decode(msgspec.json.encode(a))
        == TRANSFER.decoder.decode(msgspec.json.encode(b))
    )


@given(bodies)
def test_a_redelivery_collapses_whatever_its_field_order(a: dict) -> None:
    reordered = dict(reversed(list(a.items())))
    assert key_of(TRANSFER, a) == key_of(TRANSFER, reordered)


def test_a_notification_without_modified_on_is_never_deduplicated() -> None:
    """Nothing in a labels notification tells a redelivery from the next change: both are
    applied (a redelivery costs one coalesced re-fetch; a lost change costs the mirror)."""
    body = {"updatedCustomers": [str(uuid.uuid4())], "notificationType": "UPDATED"}
    assert key_of(LABELS, body) is None
