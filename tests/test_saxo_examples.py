"""Saxo's own example responses, fed to the code that reads them (#35: the documents are the
oracle, not the sandbox's invented values).

Every response example in Saxo's specs (sandbox/saxo/specs, Saxo's files) for an operation
partnersync calls is collected; each is given to what partnersync does with that answer:
the decoder, and the behaviour behind it (status and lifecycle, the lookup after a lost
answer, the option check, the complete-application verdict, the funding report's sums).
A test fails when an operation in use has an example nobody reads, so a new call brings
its examples in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
import yaml

SPECS = Path(__file__).resolve().parent.parent / "sandbox" / "saxo" / "specs"

# (spec, method, path) of every Saxo operation partnersync calls (sandbox/saxo routes them)
USED = (
    ("cm", "get", "/cm/v2/signups/options"),
    ("cm", "post", "/cm/v1/signups"),
    ("cm", "post", "/cm/v2/signups/attachments/{SignUpId}"),
    ("cm", "put", "/cm/v1/signups/completeapplication/{SignUpId}"),
    ("cm", "post", "/cm/v1/signups/verification/initiate/{ClientKey}"),
    ("cm", "get", "/cm/v1/signups/status/{ClientKey}"),
    ("cm", "get", "/cm/v1/signups/onboardingpdf/{ClientKey}"),
    ("ens", "get", "/ens/v1/activities"),
    ("hist", "get", "/hist/v1/unsettledamounts"),
    ("hist", "get", "/hist/v1/unsettledamounts/exchanges"),
    ("hist", "get", "/hist/v1/unsettledamounts/exchanges/{ExchangeId}"),
    ("hist", "get", "/hist/v1/unsettledamounts/instruments"),
    ("atr", "get", "/atr/v1/partner/cashtransfers"),
    ("atr", "post", "/atr/v1/partner/cashtransfers"),
    ("atr", "get", "/atr/v1/partner/cashtransfers/{TransactionId}"),
)  # fmt: skip


@cache
def spec(name: str) -> dict[str, Any]:
    return yaml.safe_load((SPECS / f"{name}.yaml").read_text())


def _resolve(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def examples(name: str, method: str, path: str) -> Iterator[tuple[str, Any]]:
    """(status code, example) of each documented JSON response: the media type's `example`
    and `examples`, else its schema's own `example`."""
    document = spec(name)
    operation = document["paths"][path][method]
    for status, response in operation["responses"].items():
        response = _resolve(document, response)
        for media_type, content in (response.get("content") or {}).items():
            if "json" not in media_type:
                continue
            found = []
            if "example" in content:
                found.append(content["example"])
            found += [
                _resolve(document, e)["value"] for e in (content.get("examples") or {}).values()
            ]
            schema = _resolve(document, content.get("schema", {}))
            if not found and isinstance(schema, dict) and "example" in schema:
                found.append(schema["example"])
            for example in found:
                yield str(status), example


def example(name: str, method: str, path: str, status: str) -> Any:
    found = [e for s, e in examples(name, method, path) if s == status]
    assert found, f"{name} {method.upper()} {path}: no {status} example"
    return found[0]


class Answering:
    """A stand-in SaxoClient answering GETs with documented bodies, by path."""

    def __init__(self, bodies: dict[str, Any]):
        self.bodies = bodies
        self.asked: list[tuple[str, dict[str, Any]]] = []

    async def get(self, path: str, **params: Any) -> bytes:
        self.asked.append((path, params))
        return msgspec.json.encode(self.bodies[path])

    async def pages(self, path: str, **params: Any) -> Any:
        self.asked.append((path, params))
        for item in self.bodies[path].get("Data", []):
            yield item


# the operations whose examples a test below reads (each says so with `reads`)
READ = frozenset(USED) - {
    ("cm", "post", "/cm/v2/signups/attachments/{SignUpId}"),  # 201, no body documented
    ("cm", "get", "/cm/v1/signups/onboardingpdf/{ClientKey}"),  # a PDF
}


def reads(*operations: tuple[str, str, str]) -> None:
    assert set(operations) <= READ


def test_signup_options_example_drives_the_option_check() -> None:
    from partners.saxo import signups
    from schemas.saxo.signups import SignUpOptionList

    op = ("cm", "get", "/cm/v2/signups/options")
    reads(op)
    listed = msgspec.convert(example(*op, "200"), SignUpOptionList)
    allowed = {o.PropertyName: [p.Key for p in o.ValuePairs] for o in listed.Data}
    assert allowed["CountryOfResidenceCode"][:2] == ["AF", "AX"]  # v2: Key is the code
    good = {"PersonalInformation": {"ServiceLanguageCode": "DA",
                                    "ResidentialAddress": {"CountryOfResidenceCode": "DK"}}}  # fmt: skip
    assert signups.option_errors(good, allowed) == []
    bad = {"PersonalInformation": {"ServiceLanguageCode": "Danish",
                                   "ResidentialAddress": {"CountryOfResidenceCode": "SE"}}}  # fmt: skip
    errors = signups.option_errors(bad, allowed)
    assert [e.split(":")[0] for e in errors] == [
        "PersonalInformation.ServiceLanguageCode",
        "PersonalInformation.ResidentialAddress.CountryOfResidenceCode",
    ]


def test_signup_create_and_status_examples() -> None:
    from partners.saxo.commands import COMMANDS
    from partners.saxo.kinds import KINDS
    from schemas.saxo.signups import SignUpResponse

    create, status = (
        ("cm", "post", "/cm/v1/signups"),
        ("cm", "get", "/cm/v1/signups/status/{ClientKey}"),
    )
    reads(create, status)
    created = example(*create, "201")
    answer = msgspec.convert(created, SignUpResponse)
    signup = next(c for c in COMMANDS if c.name == "signup")
    assert answer.ClientKey == created[signup.result_field] == "7m4I|vtYLUnEGg77o9uQhw=="
    assert {"SignUpId", "ClientId"} <= set(signup.aliases) <= set(created)
    kind = next(k for k in KINDS if k.kind == "signup")
    entity, _ = kind.decode(msgspec.json.encode(example(*status, "200")))
    seen = kind.observe(entity)
    assert seen.status == "ClientOnboarded" and kind.lifecycle.terminal(seen.status)


def test_complete_application_example_is_a_success_with_its_accounts() -> None:
    from partners.saxo import signups
    from schemas.saxo.signups import CompleteApplicationResponse

    op = ("cm", "put", "/cm/v1/signups/completeapplication/{SignUpId}")
    reads(op)
    body = example(*op, "204")  # cm.yaml puts the body on a 204 (README: read on a 200 too)
    result = signups.completion(msgspec.json.encode(body))
    assert isinstance(result, CompleteApplicationResponse)
    assert result.ApplicationStatus == "Ok" and result.AccountDetails[0].Iban == "DK43754335838392"
    failed = dict(body, ApplicationStatus="Failed", ErrorMessage="documents missing")
    with pytest.raises(signups.ApplicationFailed, match="documents missing"):
        signups.completion(msgspec.json.encode(failed))


def test_verification_example() -> None:
    from partners.saxo import signups

    op = ("cm", "post", "/cm/v1/signups/verification/initiate/{ClientKey}")
    reads(op)
    url = signups.identification_url(msgspec.json.encode(example(*op, "201")))
    assert url.startswith("https://test.signicat.com/")


def test_cash_transfer_examples_create_lookup_and_status() -> None:
    from partners.saxo.commands import COMMANDS
    from partners.saxo.kinds import KINDS

    create = ("atr", "post", "/atr/v1/partner/cashtransfers")
    listing = ("atr", "get", "/atr/v1/partner/cashtransfers")
    one = ("atr", "get", "/atr/v1/partner/cashtransfers/{TransactionId}")
    reads(create, listing, one)
    command = next(c for c in COMMANDS if c.name == "cash-transfer")
    assert example(*create, "201")[command.result_field] == "1269"
    # the lookup after a lost answer, over the documented list: found by ExternalReference
    listed = example(*listing, "200")
    client = Answering({command.path: listed})
    record = SimpleNamespace(externalId="789456")  # all a lookup reads of the record
    assert asyncio.run(command.lookup(client, record)) == ["1269"]
    assert client.asked == [(command.path, {"ExternalReference": "789456"})]
    assert asyncio.run(command.lookup(client, SimpleNamespace(externalId="other"))) == []
    kind = next(k for k in KINDS if k.kind == "cash-transfer")
    for body in [example(*one, "200"), *listed["Data"]]:
        entity, _ = kind.decode(msgspec.json.encode(body))
        seen = kind.observe(entity)
        assert seen.status == "Successful" and kind.lifecycle.terminal(seen.status)
        assert entity.value_date is None  # .NET's empty date, not year 1


def test_unsettled_examples_build_the_report() -> None:
    """The four hist.yaml examples, answering the report's calls: every breakdown builds,
    and whatever does not add up in Saxo's own examples is reported, not hidden."""
    from partners.saxo import unsettled

    root = ("hist", "get", "/hist/v1/unsettledamounts")
    exchanges = ("hist", "get", "/hist/v1/unsettledamounts/exchanges")
    single = ("hist", "get", "/hist/v1/unsettledamounts/exchanges/{ExchangeId}")
    instruments = ("hist", "get", "/hist/v1/unsettledamounts/instruments")
    reads(root, exchanges, single, instruments)
    bodies = {
        "/hist/v1/unsettledamounts": example(*root, "200"),
        "/hist/v1/unsettledamounts/exchanges": example(*exchanges, "200"),
        "/hist/v1/unsettledamounts/instruments": example(*instruments, "200"),
    }
    detail = example(*single, "200")
    for e in bodies["/hist/v1/unsettledamounts/exchanges"]["Exchanges"]:
        bodies[f"/hist/v1/unsettledamounts/exchanges/{e['ExchangeId']}"] = dict(
            detail, ExchangeId=e["ExchangeId"]
        )
    for by in unsettled.BY:
        report = asyncio.run(unsettled.build(Answering(bodies), "ck", by))
        total = Decimal(str(bodies["/hist/v1/unsettledamounts"]["Total"]))
        if by == "currency":
            assert report.total == total
            flows = sum((Decimal(str(f["Amount"])) for f in bodies[
                "/hist/v1/unsettledamounts"]["CashFlows"]), Decimal(0))  # fmt: skip
            assert (flows != total) == any(p.startswith("total") for p in report.inconsistencies)
        assert report.rows, by  # hist.yaml's exchange example has no AmountTypes: still shown
        assert all(isinstance(r.value_date, date) for r in report.rows)
    # with the root example's amount types on the exchange, the instruments example is read
    typed = {c["Currency"]: c.get("AmountTypes", [])
             for c in bodies["/hist/v1/unsettledamounts"]["Currencies"]}  # fmt: skip
    bodies["/hist/v1/unsettledamounts/exchanges/NYSE"] = dict(
        detail, Currencies=[dict(c, AmountTypes=typed.get(c["Currency"], []))
                            for c in detail["Currencies"]],
    )  # fmt: skip
    client = Answering(bodies)
    report = asyncio.run(unsettled.build(client, "ck", "instrument"))
    asked = [p for p in client.asked if p[0] == "/hist/v1/unsettledamounts/instruments"]
    assert asked and all({"AmountTypeId", "Currency"} <= set(q) for _, q in asked)
    assert 32154 in {r.ids.get("Uic") for r in report.rows}  # Saxo's id, kept


def test_ens_example_and_base_fields() -> None:
    """ens.yaml's example list is empty; its ActivityResponse schema names the base fields
    every activity has, which the activity Struct reads (and nothing else is required)."""
    from schemas.saxo import activities

    op = ("ens", "get", "/ens/v1/activities")
    reads(op)
    assert example(*op, "200") == {"Data": []}
    base = spec("ens")["components"]["schemas"]["ActivityResponse"]["properties"]
    fields = {f.encode_name for f in msgspec.structs.fields(activities.Activity)}
    assert fields == set(base)
    item = {
        "ActivityType": "MarginCalls",
        "SequenceId": "7",
        "ActivityTime": "2024-01-02T03:04:05Z",
    }
    read = activities.read("ENS_MARGIN_CALLS", msgspec.json.encode(item))
    assert read is not None and read.status == "MarginCalls" and read.modifiedOn is not None


def test_every_used_operation_with_examples_is_read() -> None:
    """An operation in use with documented examples that no test here reads fails; one
    listed as read must have examples."""
    with_examples = {op for op in USED if any(True for _ in examples(*op))}
    assert with_examples == READ


SEEDS = Path(__file__).resolve().parent.parent.parent / "shared" / "seeds"


def _seed_fragments(text: str) -> tuple[dict[str, Any], list[Any], list[Any]]:
    """saxo-transactions.txt's Transaction Schema sample, in three fragments between `...`:
    the root's attributes, `"Bookings": [...]` and `"Trades": [...]`."""
    start = text.index('"AccountId": "12121515615"')
    root = "{" + text[start : text.index("...", start)].strip().rstrip(",") + "}"
    bookings = text[text.index('"Bookings": [') :]
    bookings = "{" + bookings[: bookings.index("...")].strip().rstrip(",") + "}"
    trades = text[text.index('"Trades": [') :]
    trades = "{" + trades[: trades.index("...")].strip().rstrip(",") + "}"
    return (
        msgspec.json.decode(root),
        msgspec.json.decode(bookings)["Bookings"],
        msgspec.json.decode(trades)["Trades"],
    )


@pytest.mark.skipif(not (SEEDS / "saxo-transactions.txt").exists(), reason="seeds not beside")
def test_the_transactions_seeds_sample_is_one_valid_trade() -> None:
    """The seed's own sample transaction (a Trade with its booking and its trade) reads
    as Saxo shows it and passes the per-type rules; the same without its trade does not."""
    from schemas.saxo.transactions import Transaction

    root, bookings, trades = _seed_fragments((SEEDS / "saxo-transactions.txt").read_text())
    sample = msgspec.convert(dict(root, Bookings=bookings, Trades=trades), Transaction)
    assert (sample.TransactionType, sample.TradeId, sample.AccountId) == (
        "Trade",
        "564455434",
        "12121515615",
    )
    assert sample.problems() == []
    assert msgspec.convert(dict(root, Bookings=bookings), Transaction).problems() != []
