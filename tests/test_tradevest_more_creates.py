"""The creates with no externalId in Tradevest's documents (#37 item 5): legal
representatives (§4.2) and identification verifications (§4.3). One at a time per scope;
after a lost answer, what the scope's listing holds that it did not before the first send
is the command's entity, so the partner books it once."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import System
from tests.test_tradevest_actions import accepted, mirrored, submit

pytestmark = pytest.mark.e2e


def legal_entity(system: System) -> str:
    body = {"legalName": "Acme GmbH", "legalForm": "LIMITED_LIABILITY_COMPANY",
            "registerCountry": "DE", "registerNumber": "HRB 1", "registerCourt": "Berlin",
            "foundedOn": "2001-01-01", "taxNumber": "123"}  # fmt: skip
    done, shown = submit(system, "legal-entity", body, wait=False)  # stays open: no --wait
    assert done.returncode == 0, done.stdout + done.stderr
    return str(accepted(system, shown).entityId)


REPRESENTATIVE = {"firstName": "Ada", "lastName": "Lovelace", "birthDay": "1990-12-10",
                  "birthPlace": "London", "birthCountry": "GB", "isUsNationality": False,
                  "function": "MANAGING_DIRECTOR", "soleSignatureAuthorized": True,
                  "fatcaControllingPerson": False}  # fmt: skip


def test_a_legal_representative_is_created_once_even_when_the_answer_is_lost(
    system: System,
) -> None:
    np = system.fixtures()["naturalPersonId"]
    le = legal_entity(system)
    system.http.post(system.sandbox + "/_sandbox/faults", json={
        "timeout_ms": 5000,  # the platform creates it; the answer outlives the client's 3 s
        "script": [{"fault": "timeout", "method": "POST", "path": "/legal-representatives"}],
    }).raise_for_status()  # fmt: skip
    body = dict(REPRESENTATIVE, legalEntityId=le)
    done, shown = submit(system, "legal-representative", body, np, wait=False)
    assert done.returncode == 0, done.stdout + done.stderr
    shown["entityId"] = accepted(system, shown).entityId
    listed = system.tv("GET", f"/entities/{le}/legal-representatives").json()["data"]
    assert [r["legalRepresentativeId"] for r in listed] == [shown["entityId"]]  # booked once
    history = json.loads(system.cli("command", "show", shown["externalId"], "--json").stdout)
    assert "found" in [a["outcome"] for a in history["history"]], history["history"]
    mirrored(system, f"tradevest:legal-representative:{shown['entityId']}", "mirrored",
             lambda r: r.status == "CREATED")  # fmt: skip

    unnamed = system.cli("command", "submit", "legal-representative", "--data",
                         json.dumps(dict(REPRESENTATIVE, legalEntityId=le)))  # fmt: skip
    assert unnamed.returncode == 2 and "Requestor-ID" in unnamed.stderr
    typo = system.cli("command", "submit", "legal-representative", "--acting-for", np, "--data",
                      json.dumps(dict(REPRESENTATIVE, legalEntityId=le, functon="X")))  # fmt: skip
    assert typo.returncode == 2 and "functon" in typo.stderr


def test_an_identification_verification_is_created_and_mirrored(system: System) -> None:
    fx = system.fixtures()
    body = {"naturalPersonId": fx["naturalPersonId"], "externalVerifier": "WEB_ID",
            "identificationType": "VIDEO_IDENT", "redirectUrl": "https://example.com/back"}  # fmt: skip
    done, shown = submit(system, "identification-verification", body, fx["naturalPersonId"])
    assert done.returncode == 0 and shown["state"] == "ACCEPTED", done.stdout + done.stderr
    key = f"tradevest:identification-verification:{shown['entityId']}"
    mirrored(system, key, "APPROVED", lambda r: r.status == "APPROVED")
    wrong = dict(body, externalVerifier="POST_IDENT", naturalPersonId=str(uuid.uuid4()))
    refused = system.cli("command", "submit", "identification-verification", "--acting-for",
                         fx["naturalPersonId"], "--data", json.dumps(wrong))  # fmt: skip
    assert refused.returncode == 2 and "externalVerifier" in refused.stderr
