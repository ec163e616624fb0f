"""The Saxo Structs against Saxo's published schemas (sandbox/saxo/specs, Saxo's own files).

Hand-kept Structs, walked field by field against the schema each one models: a request
Struct has exactly the documented fields (none missing, none invented), requires at least
what Saxo requires and has the same enums; a response Struct reads only fields the schema
has. (Saxo's response schemas mark almost nothing required; the few ids partnersync cannot
work without, e.g. TransactionId, stay required in the Structs.)
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
import yaml

from schemas.saxo import cash_transfers, signups, unsettled

SPECS = Path(__file__).resolve().parent.parent / "sandbox" / "saxo" / "specs"


@cache
def spec(name: str) -> dict[str, Any]:
    return yaml.safe_load((SPECS / f"{name}.yaml").read_text())


def resolve(service: str, schema: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in schema:
            schema = spec(service)["components"]["schemas"][schema["$ref"].split("/")[-1]]
        elif "allOf" in schema and len(schema["allOf"]) == 1:
            schema = schema["allOf"][0]
        else:
            return schema


def _unwrap(t: mi.Type) -> mi.Type:
    while True:
        if isinstance(t, mi.Metadata):
            t = t.type
        elif isinstance(t, mi.UnionType):
            rest = [x for x in t.types if not isinstance(x, mi.NoneType)]
            if len(rest) != 1:
                return t
            t = rest[0]
        else:
            return t


def walk(
    struct: type[msgspec.Struct], service: str, schema: dict[str, Any], *, request: bool,
    path: str, added: frozenset[str] = frozenset(),
) -> list[str]:  # fmt: skip
    schema = resolve(service, schema)
    props: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    fields = {f.encode_name: f for f in mi.type_info(struct).fields}  # type: ignore[attr-defined]
    problems = [f"{path}.{n}: not in Saxo's schema" for n in sorted(set(fields) - set(props))]
    if request:
        problems += [
            f"{path}.{n}: documented, missing from the Struct"
            for n in sorted(set(props) - set(fields) - added)
        ]
        problems += [
            f"{path}.{n}: required by Saxo, optional here"
            for n in sorted(required - added)
            if n in fields and not fields[n].required
        ]
    for name, field in fields.items():
        if name not in props:
            continue
        prop = resolve(service, props[name])
        t = _unwrap(field.type)
        if isinstance(t, mi.ListType):
            t = _unwrap(t.item_type)
            prop = resolve(service, prop.get("items", {}))
        if isinstance(t, mi.StructType):
            problems += walk(t.cls, service, prop, request=request, path=f"{path}.{name}")
        elif isinstance(t, mi.LiteralType) and "enum" in prop:
            ours, theirs = set(t.values), set(prop["enum"])
            if (request and ours != theirs) or not ours <= theirs:
                problems.append(f"{path}.{name}: enum {sorted(ours)} vs Saxo's {sorted(theirs)}")
    return problems


def schema_ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


REQUESTS = [
    (signups.SignUpRequest, "cm", "SignUpRequest", frozenset()),
    (signups.AttachmentsRequest, "cm", "SignupDocuments", frozenset()),
    # ExternalReference is partnersync's derived id, added to the body at submit
    (cash_transfers.PartnerCashTransferRequest, "atr", "PartnerCashTransferRequest",
     frozenset({"ExternalReference"})),
]  # fmt: skip
RESPONSES = [
    (signups.SignUpResponse, "cm", "SignUpResponse"),
    (signups.SignUpStatusResponse, "cm", "SignUpStatusResponse"),
    (signups.SignUpOptionList, "cm", "Models.SignUpOptionListResult"),
    (cash_transfers.PartnerCashTransferResponse, "atr", "PartnerCashTransferResponse"),
    (cash_transfers.TransferResult, "atr", "TransferResult"),
    (unsettled.CurrencyRoot, "hist", "CurrencyRoot"),
    (unsettled.ExchangeRoot, "hist", "ExchangeRoot"),
    (unsettled.ExchangeBreakdown, "hist", "ExchangeBreakdown"),
    (unsettled.InstrumentBreakdownList, "hist", "InstrumentBreakdownListResult"),
]


@pytest.mark.parametrize(("struct", "service", "name", "added"), REQUESTS, ids=lambda v: str(v))
def test_request_struct_is_saxo_schema(struct, service, name, added) -> None:
    assert walk(struct, service, schema_ref(name), request=True, path=name, added=added) == []


@pytest.mark.parametrize(("struct", "service", "name"), RESPONSES, ids=lambda v: str(v))
def test_response_struct_reads_only_saxo_fields(struct, service, name) -> None:
    assert walk(struct, service, schema_ref(name), request=False, path=name) == []


def test_the_walk_finds_a_misnamed_field() -> None:
    """The check can fail: the address Struct before the fix (CountryCode) is caught."""

    class OldAddress(msgspec.Struct, kw_only=True):
        StreetName: str
        City: str
        PostalCode: str
        CountryCode: str

    problems = walk(
        OldAddress, "cm", schema_ref("Models.OnboardingAddress"), request=True, path="A"
    )
    assert "A.CountryCode: not in Saxo's schema" in problems
    assert "A.CountryOfResidenceCode: documented, missing from the Struct" in problems
