"""Personal data and secrets are redacted at the schema level."""

from __future__ import annotations

import json
import uuid
from datetime import date

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from partnersync import config
from schemas.sensitive import MASK, redact, sensitive_fields
from schemas.tradevest.commands import (
    Address,
    CustomerData,
    NaturalPersonData,
    RefAccount,
    TaxDetail,
)

# a name is a value: one spelled like a field name ("birthPla") would be found in the keys
names = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=8, max_size=20
).filter(
    lambda s: (
        s
        not in str(
            list(NaturalPersonData.__struct_fields__)
            + list(Address.__struct_fields__)
            + list(TaxDetail.__struct_fields__)
        )
    )
)


@given(first=names, last=names, place=names, street=names, tax=names)
def test_natural_person_personal_data_is_never_rendered(first, last, place, street, tax) -> None:
    person = NaturalPersonData(
        gender="FEMALE", firstName=first, lastName=last, birthDay=date(1990, 12, 10), birthPlace=place,
        birthCountry="GB", isUsNationality=False,
        mainAddress=Address(street=street, city="London", zip="N1 9GU", country="GB"),
        taxDetails=[TaxDetail(taxId=tax, taxResidency="GB")],
    )  # fmt: skip
    rendered = json.dumps(redact(person))
    for secret in (first, last, place, street, tax, "1990-12-10", "N1 9GU"):
        assert secret not in rendered
    shown = redact(person)
    assert (
        shown["firstName"] == MASK and shown["birthCountry"] == "GB" and shown["gender"] == "FEMALE"
    )
    assert (
        shown["mainAddress"]["country"] == "GB" and shown["taxDetails"][0]["taxResidency"] == "GB"
    )


def test_iban_and_owner_are_masked_in_nested_lists() -> None:
    customer = CustomerData(
        entityId=uuid.uuid4(), entityType="NATURAL_PERSON",
        refAccounts=[RefAccount(iban="DE89370400440532013000", ownerName="Ada Lovelace")],
    )  # fmt: skip
    text = json.dumps(redact(customer))
    assert "DE89370400440532013000" not in text and "Lovelace" not in text
    assert sensitive_fields(RefAccount) == {"iban", "ownerName"}


def test_settings_never_render_secrets() -> None:
    settings = config.load(
        {
            "TRADEVEST_WEBHOOK_SECRETS": "whsec-one,whsec-two",
            "TRADEVEST_CLIENT_SECRET": "cs-123",
            "SAXO_TOKEN": "tok-9",
        },
        state_fallback=False,
    )
    text = repr(settings) + str(settings)
    for secret in ("whsec-one", "whsec-two", "cs-123", "tok-9"):
        assert secret not in text
    from partners.tradevest.settings import TradevestSettings

    secrets = TradevestSettings.of(settings).webhook_secrets
    assert secrets == ("whsec-one", "whsec-two")  # still usable


def test_unmarked_fields_pass_through() -> None:
    assert redact(msgspec.json.decode(b'{"a": [1, {"b": null}]}')) == {"a": [1, {"b": None}]}
