"""Decoding at the edge: Tradevest notification, entity and error bodies."""

from __future__ import annotations

import uuid
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.tradevest.errors import ErrorMessage
from schemas.tradevest.events import EVENT_TYPES
from schemas.tradevest.notifications import TransferNotification
from schemas.tradevest.transfers import CreateTransfer, TransferEnvelope

decode_notification = EVENT_TYPES["transfer-notification"].decoder.decode


def test_transfer_notification_full() -> None:
    n = decode_notification(
        b'{"transferId":"3f0c2a52-6a43-4c42-9a8e-0c7f1f3e9a01","status":"PENDING",'
        b'"modifiedOn":"2026-01-01T10:00:00.123Z","notificationType":"CREATED"}'
    )
    assert isinstance(n, TransferNotification)
    assert n.transferId == uuid.UUID("3f0c2a52-6a43-4c42-9a8e-0c7f1f3e9a01")
    assert n.status == "PENDING" and n.modifiedOn.microsecond == 123000
    assert not n.is_validation_error


def test_rejected_update_has_no_status_or_modified_on() -> None:
    n = decode_notification(
        b'{"transferId":"3f0c2a52-6a43-4c42-9a8e-0c7f1f3e9a01","notificationType":"VALIDATION_ERROR",'
        b'"validationError":{"errorType":"ALREADY_EXISTS_ERROR","description":"dup"}}'
    )
    assert n.status is None and n.modifiedOn is None
    assert n.is_validation_error and n.validationError.errorType == "ALREADY_EXISTS_ERROR"


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b'{"notificationType":"CREATED"}', "transferId"),
        (b'{"transferId":"nope","notificationType":"CREATED"}', "transferId"),
        (b'{"transferId":"3f0c2a52-6a43-4c42-9a8e-0c7f1f3e9a01"}', "notificationType"),
        (
            b'{"transferId":"3f0c2a52-6a43-4c42-9a8e-0c7f1f3e9a01","notificationType":"CREATED","modifiedOn":"yesterday"}',
            "modifiedOn",
        ),
        (b"[1,2]", "object"),
    ],
)
def test_invalid_notifications_name_the_problem(body: bytes, fragment: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=fragment):
        decode_notification(body)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_decode_error(body: bytes) -> None:
    # Only DecodeError (ValidationError is one) may escape: the receiver maps it to 400.
    try:
        result = decode_notification(body)
    except msgspec.DecodeError as exc:
        result = exc
    assert isinstance(result, TransferNotification | msgspec.DecodeError)


def test_transfer_envelope_tolerates_unknown_fields_and_statuses() -> None:
    t = msgspec.json.decode(
        b'{"transfer":{"transferId":"3f0c2a52-6a43-4c42-9a8e-0c7f1f3e9a01","transferStatus":"RETURNED",'
        b'"somethingNew":1,"amount":12.5}}',
        type=TransferEnvelope,
    ).transfer
    assert t.transferStatus == "RETURNED" and t.amount == Decimal("12.5")


def test_create_transfer_limits() -> None:
    ok = {
        "customerProductId": str(uuid.uuid4()),
        "amount": 10.01,
        "reference": "r",
        "externalId": "x",
    }
    assert msgspec.convert(ok, CreateTransfer).currency == "EUR"
    assert msgspec.json.decode(
        b'{"customerProductId":"3f0c2a52-6a43-4c42-9a8e-0c7f1f3e9a01","amount":10.01,"reference":"r","externalId":"x"}',
        type=CreateTransfer,
    ).amount == Decimal("10.01")
    for bad in (
        {"amount": 0},
        {"amount": -1},
        {"amount": 1.001},
        {"amount": "NaN"},
        {"reference": ""},
        {"reference": "x" * 141},
        {"externalId": ""},
    ):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(ok | bad, CreateTransfer)


def test_error_message() -> None:
    e = msgspec.json.decode(
        b'{"message":"Validation failed","responseType":"ERROR","requestId":"r1",'
        b'"errorDetails":[{"field":"amount","errors":[{"code":"FORMAT","message":"bad"}]}]}',
        type=ErrorMessage,
    )
    assert e.errorDetails[0].field == "amount" and e.errorDetails[0].errors[0].code == "FORMAT"
