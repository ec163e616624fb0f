"""schemas/strict.py: an unknown field is refused by name, with the nearest known one."""

from __future__ import annotations

import pytest

from schemas import strict
from schemas.saxo.signups import AttachmentsRequest
from schemas.tradevest.commands import NaturalPersonData, TransferData


@pytest.mark.parametrize(
    ("struct", "body", "message"),
    [
        (TransferData, b'{"customerProductId":"8f14e45f-ceea-4e7a-8a3b-1d6b7f0c2d11",'
                       b'"amout":1,"reference":"x"}',
         'unknown field "amout" at $ (did you mean "amount"?)'),
        (NaturalPersonData, b'{"mainAddress":{"stret":"x"}}',
         'unknown field "stret" at $.mainAddress (did you mean "street"?)'),
        (AttachmentsRequest, b'{"Documents":[{"Data":"eA==","FileNam":"a"}]}',
         'unknown field "FileNam" at $.Documents[0] (did you mean "FileName"?)'),
    ],
)  # fmt: skip
def test_unknown_field_named_with_nearest(struct, body, message) -> None:
    with pytest.raises(strict.InputError) as refused:
        strict.decode(body, struct)
    assert str(refused.value) == message


def test_far_off_field_lists_the_known_ones() -> None:
    with pytest.raises(strict.InputError, match="known here: .*amount"):
        strict.decode(b'{"zzzzzz":1}', TransferData)


def test_other_errors_pass_through() -> None:
    with pytest.raises(strict.InputError, match="not valid JSON"):
        strict.decode(b"{", TransferData)
