"""Saxo's published OpenAPI specs as the oracle: the sandbox refuses what Saxo's contract
refuses (Saxo's 400 shape), answers only what the contract allows (tests/conftest.py fails a
test whose answers were off it), and partnersync's own bodies pass it whole."""

from __future__ import annotations

import json
import warnings

import pytest

from sandbox.saxo.contract import Contract
from tests.conftest import ROOT, System

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "saxo-signup.json"
AUTH = {"Authorization": "Bearer sandbox"}

# The body tests/test_saxo_signups.py used before the contract was the oracle: five
# violations, all accepted by the old sandbox with a 201.
OLD_BODY = {
    "PersonalInformation": {
        "FirstName": "Ada", "LastName": "Hansen", "DateOfBirth": "1990-12-10",
        "CountryOfBirth": "DK", "NationalityCode": "DK",
        "ResidentialAddress": {"StreetName": "Vestergade", "City": "Aarhus", "PostalCode": "8000",
                               "CountryCode": "DK"},
    },
    "RegulatoryInformation": {"ServiceLanguageCode": "EN"},
}  # fmt: skip


def saxo(system: System, method: str, path: str, **kwargs):
    return system.http.request(method, system.sandbox + "/saxo/openapi" + path, **kwargs)


def test_sandbox_refuses_what_saxo_refuses(system: System) -> None:
    answer = saxo(system, "POST", "/cm/v1/signups", json=OLD_BODY, headers=AUTH)
    assert answer.status_code == 400
    error = answer.json()
    assert error["ErrorCode"] == "InvalidModelState"
    problems = json.dumps(error["ModelState"])
    for violation in (
        "'ContactInformation' is a required property",
        "'ServiceLanguageCode' is a required property",
        "'CountryOfResidenceCode' is a required property",
        "'CountryCode' was unexpected",
        "'ServiceLanguageCode' was unexpected",  # in RegulatoryInformation
    ):
        assert violation in problems, violation


def test_spec_errors_are_json_with_listed_codes(system: System) -> None:
    unknown = saxo(system, "GET", "/cm/v9/nothing", headers=AUTH)
    assert unknown.status_code == 404 and unknown.json()["ErrorCode"] == "NotFound"
    skip = saxo(
        system, "GET", "/ens/v1/activities",
        params={"Activities": "Orders", "$skiptoken": "x"}, headers=AUTH,
    )  # fmt: skip
    assert skip.status_code == 400 and skip.json()["ErrorCode"] == "InvalidArguments"
    top = saxo(system, "GET", "/ens/v1/activities",
               params={"Activities": "Orders", "$top": "x"}, headers=AUTH)  # fmt: skip
    assert top.status_code == 400 and top.json()["ErrorCode"] == "InvalidModelState"
    attach = saxo(system, "POST", "/cm/v2/signups/attachments/nope", headers=AUTH,
                  json={"Documents": [{"Data": "eA==", "FileName": "a.pdf"}]})  # fmt: skip
    assert attach.status_code == 404 and attach.json()["ErrorCode"] == "NotFound"


def test_readme_signup_goes_through_whole(system: System) -> None:
    """The README's example: accepted by the contract, submitted by the CLI, and every
    documented field it carries reaches the sandbox as given."""
    done = system.cli(
        "command", "submit", "signup", "--key", "readme-example", "--data", f"@{EXAMPLE}",
        "--wait", "20", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    client_key = json.loads(done.stdout)["entityId"]
    received = system.http.get(system.sandbox + f"/_sandbox/saxo/signups/{client_key}").json()
    assert received == json.loads(EXAMPLE.read_text())


def test_misspelled_field_is_refused_by_name(system: System, tmp_path) -> None:
    body = json.loads(EXAMPLE.read_text())
    body["PersonalInformation"]["EmploymentInformation"]["EmployerNmae"] = "Nordic"
    path = tmp_path / "signup.json"
    path.write_text(json.dumps(body))
    before = system.http.get(system.sandbox + "/_sandbox/ledger").json()["saxoSignupRequests"]
    refused = system.cli("command", "submit", "signup", "--data", f"@{path}")
    assert refused.returncode == 2
    assert 'unknown field "EmployerNmae"' in refused.stderr
    assert 'did you mean "EmployerName"' in refused.stderr
    assert "Traceback" not in refused.stderr
    after = system.http.get(system.sandbox + "/_sandbox/ledger").json()["saxoSignupRequests"]
    assert after == before  # nothing sent


def test_contract_report_counts_operations(system: System) -> None:
    saxo(system, "GET", "/cm/v2/signups/options", headers=AUTH)
    report = system.http.get(system.sandbox + "/_sandbox/contract").json()
    options = report["operations"]["SignUpV2GetSignupOptions"]
    assert options["requests"] >= 1 and options["responses"] >= 1
    assert report["violationCount"] == 0, report["violations"]


def test_bearer_scheme_is_checked_without_warnings() -> None:
    """Saxo's operations take its OAuth2 token or a JWT, both as `Authorization: Bearer`.
    openapi-core cannot check an oauth2 scheme: it warned on every request (a raw line in
    `make run`'s JSON logs) and let any request through that alternative, header or not."""
    contract = Contract()
    contract.load()
    query = [("Activities", "Orders")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert contract.check_request(
            "GET", "/ens/v1/activities", query, {"authorization": "Bearer x"}, b""
        ) is None  # fmt: skip
        refused = contract.check_request("GET", "/ens/v1/activities", query, {}, b"")
    assert not [w for w in caught if "scheme" in str(w.message)], [str(w.message) for w in caught]
    assert refused is not None and "Security not found" in json.dumps(refused[1]), refused
