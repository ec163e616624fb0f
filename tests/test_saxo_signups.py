"""Saxo client signups: submitted through the journal, polled to their final state."""

from __future__ import annotations

import json
import uuid

import msgspec
import pytest

from partnersync import commands, keys, store, workqueue
from schemas import strict
from schemas.commands import CommandState
from schemas.saxo.signups import CompleteApplicationResponse, SignUpRequest
from tests.conftest import ROOT, System, settings_for, wait_for

pytestmark = pytest.mark.e2e


EXAMPLE = ROOT / "examples" / "saxo-signup.json"  # the README's signup: complete, spec-valid


def signup(first: str | None = None, last: str = "Hansen", **personal: object) -> SignUpRequest:
    """The README's signup for a new applicant (Saxo refuses a second signup of one)."""
    first = first or f"Ada{uuid.uuid4().hex[:8]}"
    body = json.loads(EXAMPLE.read_text())
    body["PersonalInformation"].update(FirstName=first, LastName=last, **personal)
    return strict.convert(body, SignUpRequest)


def submit(system: System, data: SignUpRequest) -> commands.CommandRecord:
    wq = workqueue.WorkQueue(system.r, queue="partnersync", drainers=4, lease_ms=3000)
    record, _ = commands.submit(
        system.r,
        wq,
        "signup",
        data,
        intent_key=f"k-{uuid.uuid4()}",
        settings=settings_for(system.env),
    )
    return wait_for(
        lambda: (r := commands.load(system.r, record.externalId)).state.final and r,
        what="submitted",
    )


def state(system: System, client_key: str, wanted: str):
    key = keys.entity_key("saxo", "signup", client_key)
    return system.wait_status(key, wanted, timeout=30)


def test_signup_to_client_onboarded(system: System) -> None:
    record = submit(system, signup())
    assert record.state == CommandState.ACCEPTED
    result = record.result
    assert {"ClientId", "ClientKey", "SignUpId"} <= set(result) and record.entityId == result[
        "ClientKey"
    ]
    assert system.cli("saxo", "complete", record.externalId).returncode == 0
    onboarded = state(system, record.entityId, "ClientOnboarded")
    assert [t.to for t in store.history(system.r, onboarded.key)][-1] == "ClientOnboarded"
    changes = [
        f[b"to"].decode()
        for _, f in system.r.xrange(keys.CHANGES)
        if f[b"key"].decode() == onboarded.key
    ]
    assert changes[-1] == "ClientOnboarded"
    shown = system.cli("entities", "show", onboarded.key)
    assert "Hansen" not in shown.stdout  # personal data never shown


def test_pending_with_reasons_then_resolved_by_an_attachment(system: System, tmp_path) -> None:
    record = submit(system, signup(last="PendingPerson"))
    system.cli("saxo", "complete", record.externalId)
    pending = state(system, record.entityId, "Pending")
    data = json.loads(bytes(pending.data))
    assert data["PendingReasons"][0]["PendingField"] == "Proof of identity"
    assert "Expired" in system.cli("entities", "show", pending.key).stdout
    assert system.r.zscore(keys.ATTENTION, pending.key) is not None
    passport = tmp_path / "passport.pdf"
    passport.write_bytes(b"%PDF-1.4 passport")
    # `--` ends the options: a ClientKey may begin with '-' (argparse would read an option)
    attached = system.cli(
        "saxo", "attach", "--type", "ProofOfIdentity", "--", record.entityId, str(passport)
    )
    assert attached.returncode == 0, attached.stderr
    state(system, record.entityId, "ClientOnboarded")
    assert system.r.zscore(keys.ATTENTION, pending.key) is None


def test_client_match_is_terminal_and_never_retried(system: System) -> None:
    record = submit(system, signup(first="Known", last="Client"))
    assert record.state == CommandState.REJECTED and record.rejection.errorCode == "ClientMatch"
    assert record.attempts == 1
    lead = submit(system, signup(first="Known", last="Lead"))
    assert lead.rejection.errorCode == "PreClientMatch"


def test_invalid_option_is_refused_before_sending(system: System) -> None:
    before = system.http.get(system.sandbox + "/_sandbox/ledger").json()["saxoSignupRequests"]
    wq = workqueue.WorkQueue(system.r, queue="partnersync", drainers=4, lease_ms=3000)
    with pytest.raises(commands.CommandError) as refused:
        commands.submit(
            system.r,
            wq,
            "signup",
            signup(CountryOfBirth="XX"),
            intent_key="k-x",
            settings=settings_for(system.env),
        )
    message = str(refused.value)
    assert "PersonalInformation.CountryOfBirth" in message and "'XX'" in message and "DK" in message
    assert (
        system.http.get(system.sandbox + "/_sandbox/ledger").json()["saxoSignupRequests"] == before
    )
    options = system.cli("saxo", "options", "--json")
    assert "CountryOfBirth" in json.loads(options.stdout)


def test_options_are_read_from_every_page_and_checked_by_path(system: System) -> None:
    """The options list is paged (`__next`, SignUpOptionListResult); an option applies to its
    field's place in SignUpRequest, not to every field of that name: the account's
    CurrencyCode is an option, an income amount's CurrencyCode is any currency."""
    ledger = system.sandbox + "/_sandbox/ledger"
    before = system.http.get(ledger).json()["saxoSignupRequests"]
    body = signup()
    wrong_account = msgspec.structs.replace(
        body,
        AccountInformation=msgspec.structs.replace(body.AccountInformation, CurrencyCode="SEK"),
    )
    wq = workqueue.WorkQueue(system.r, queue="partnersync", drainers=4, lease_ms=3000)
    with pytest.raises(commands.CommandError) as refused:
        commands.submit(
            system.r, wq, "signup", wrong_account, intent_key=f"k-{uuid.uuid4()}",
            settings=settings_for(system.env),
        )  # fmt: skip
    assert "AccountInformation.CurrencyCode: 'SEK'" in str(refused.value)  # on page 2
    assert system.http.get(ledger).json()["saxoSignupRequests"] == before
    options = json.loads(system.cli("saxo", "options", "--json").stdout)
    assert {"CountryOfBirth", "CurrencyCode"} <= set(options)
    raw = json.loads(EXAMPLE.read_text())
    raw["PersonalInformation"]["FirstName"] = f"Ada{uuid.uuid4().hex[:8]}"
    raw["GlobalFinancialInformation"]["AnnualIncomeAfterTax"]["CurrencyCode"] = "SEK"
    record = submit(system, strict.convert(raw, SignUpRequest))
    assert record.state == CommandState.ACCEPTED, record.rejection


def test_manual_handling_is_shown_and_rejection_is_final(system: System) -> None:
    manual = submit(system, signup(last="ManualCase"))
    system.cli("saxo", "complete", manual.externalId)
    key = keys.entity_key("saxo", "signup", manual.entityId)
    seen = wait_for(
        lambda: (
            (r := store.load(system.r, [key])[0])
            and json.loads(bytes(r.data)).get("OnboardingSubState") == "ManualHandling"
            and r
        ),
        what="ManualHandling",
    )
    assert seen.status == "InProgress"
    rejected = submit(system, signup(last="RejectMe"))
    system.cli("saxo", "complete", rejected.externalId)
    state(system, rejected.entityId, "Rejected")


def test_verification_and_onboarding_pdf(system: System, tmp_path) -> None:
    record = submit(system, signup())
    url = system.cli(
        "saxo", "verify", record.externalId, "--redirect-url", "https://ib.example/back"
    )
    assert url.returncode == 0 and url.stdout.startswith("https://")
    pdf = tmp_path / "501.pdf"
    made = system.cli("saxo", "pdf", record.externalId, "--type", "Switzerland501", "-o", str(pdf))
    assert made.returncode == 0, made.stderr
    assert pdf.read_bytes().startswith(b"%PDF-")


def test_a_failed_complete_application_is_a_failure(system: System) -> None:
    """cm.yaml: ApplicationStatus Failed with an ErrorMessage ("reach out to Saxo Bank"):
    exit 1 with Saxo's message, not "application complete" (#35)."""
    record = submit(system, signup(last="CompleteFails"))
    done = system.cli("saxo", "complete", record.externalId)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Client data could not be verified" in done.stderr


def test_complete_application_awaiting_the_accounts_shows_them(system: System) -> None:
    record = submit(system, signup())
    done = system.cli("saxo", "complete", record.externalId, "--await-account-creation", "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["ApplicationStatus"] == "Ok"
    assert answer["AccountDetails"][0]["Iban"] == "DK43754335838392"
    state(system, record.entityId, "ClientOnboarded")


def test_complete_application_reads_the_documents_examples() -> None:
    """cm.yaml's CompleteApplicationResponse example, and its Failed form."""
    import yaml

    spec = yaml.safe_load((ROOT / "sandbox/saxo/specs/cm.yaml").read_text())
    example = spec["components"]["schemas"]["CompleteApplicationResponse"]["example"]
    ok = msgspec.json.decode(msgspec.json.encode(example), type=CompleteApplicationResponse)
    assert ok.ApplicationStatus == "Ok" and ok.AccountDetails[0].CurrencyIsoCode == "USD"
    failed = msgspec.json.decode(
        b'{"ApplicationStatus":"Failed","ErrorMessage":"stringValue"}',
        type=CompleteApplicationResponse,
    )
    assert (failed.ApplicationStatus, failed.ErrorMessage) == ("Failed", "stringValue")


def test_a_signup_whose_answer_was_lost_is_never_filed_twice(system: System) -> None:
    """#35: the first POST /cm/v1/signups acts, its answer is lost. Saxo offers no lookup by
    an id of ours, so the signup is sent again, and Saxo's applicant check answers
    PreClientMatch: one signup at Saxo, and the command asks for a human (the first one's
    ClientKey is unknown) instead of ending as an ordinary rejection."""
    ledger = system.sandbox + "/_sandbox/ledger"
    before = [e for e in system.http.get(ledger).json()["entities"] if e["kind"] == "signup"]
    lost = {"fault": "timeout", "method": "POST", "path": "/cm/v1/signups"}
    system.http.post(
        system.sandbox + "/_sandbox/faults", json={"timeout_ms": 4000, "script": [lost]}
    )
    record = submit(system, signup())
    after = [e for e in system.http.get(ledger).json()["entities"] if e["kind"] == "signup"]
    assert len(after) == len(before) + 1  # one signup, not two
    assert record.state == CommandState.REJECTED and record.attempts == 2
    # PreClientMatch, or ClientMatch once the first signup was onboarded meanwhile
    assert record.rejection is not None
    assert record.rejection.errorCode in ("PreClientMatch", "ClientMatch")
    assert "offers no lookup" in record.history[-1].outcome
    assert system.r.zscore(keys.COMMAND_ATTENTION, record.externalId) is not None
