"""Tradevest as its docs describe it: documented optional fields reach the platform whole,
misspelled fields are refused by name, and the sandbox enforces what the platform enforces."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import System

pytestmark = pytest.mark.e2e

ADDRESS = {"street": "Hauptstr.", "streetNumber": "5", "city": "Berlin", "zip": "10115",
           "country": "DE", "additionalInfo": "Hinterhaus"}  # fmt: skip
NATURAL_PERSON = {
    "gender": "FEMALE", "firstName": "Ada", "lastName": "Lovelace", "birthDay": "1990-01-01",
    "birthPlace": "London", "birthCountry": "GB", "isUsNationality": False,
    "title": "Dr.", "maritalStatus": "SINGLE", "language": "en",
    "nationalities": [{"countryCode": "GB", "nationalIdentifier": "AB123",
                       "nationalIdentifierType": "PASSPORT"}],
    "taxDetails": [{"taxId": "12345678901", "taxResidency": "DE"}],
    "profession": "ENGINEER", "professionGroup": "EMPLOYEE",
    "naceSectors": [{"section": "J", "description": "Information and communication"}],
    "mainAddress": ADDRESS, "correspondenceAddress": ADDRESS,
    "annualIncomeNet": 85000, "sourceOfIncome": ["SALARY"], "availableAssets": 120000,
    "originOfAssets": ["SAVINGS"],
    "contact": {"phone": "+4930123456", "email": "ada@example.com", "website": "https://ada.example"},
}  # fmt: skip
LEGAL_ENTITY = {
    "legalName": "Analytical Engines GmbH", "legalForm": "LIMITED_LIABILITY_COMPANY",
    "registerCountry": "DE", "registerNumber": "HRB 12345", "registerCourt": "Berlin",
    "foundedOn": "2010-05-01", "taxNumber": "27/123/45678",
    "registerCourtZipCode": "10115", "registeredOn": "2010-06-01", "purpose": "Software",
    "vatId": "DE123456789", "isListed": False, "averageProfit": 100000,
    "averageRevenue": 2500000, "liquidAssets": 400000, "lastAnnualFinancialStatement": "2025",
    "naceSectors": [{"section": "J", "code": "62.01", "description": "Computer programming"}],
    "mainAddress": ADDRESS, "correspondenceAddress": ADDRESS, "invoiceAddress": ADDRESS,
}  # fmt: skip


def submit(system: System, kind: str, body: dict) -> dict:
    done = system.cli(
        "command", "submit", kind, "--key", f"k-{uuid.uuid4()}", "--data", json.dumps(body),
        "--wait", "20", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("kind", "body", "path"),
    [("natural-person", NATURAL_PERSON, "/entities/natural-persons/"),
     ("legal-entity", LEGAL_ENTITY, "/entities/legal-entities/")],
    ids=["natural-person", "legal-entity"],
)  # fmt: skip
def test_documented_optional_fields_reach_the_platform(system: System, kind, body, path) -> None:
    result = submit(system, kind, body)
    assert result["state"] == "ACCEPTED"
    stored = system.tv("GET", path + result["entityId"]).json()
    for field, value in body.items():
        assert stored[field] == value, field
    assert stored["externalId"] == result["externalId"]


def test_misspelled_field_is_refused_by_name(system: System) -> None:
    body = {"customerProductId": str(uuid.uuid4()), "amout": 12.5, "reference": "payout"}
    refused = system.cli("command", "submit", "transfer", "--data", json.dumps(body))
    assert refused.returncode == 2
    assert 'unknown field "amout" at $ (did you mean "amount"?)' in refused.stderr
    assert "Traceback" not in refused.stderr


def test_sandbox_requires_requestor_id_where_documented(system: System) -> None:
    body = {"entityId": str(uuid.uuid4()), "entityType": "NATURAL_PERSON"}
    refused = system.tv("POST", "/roles/customers", body)
    assert refused.status_code == 400
    assert refused.json()["errorDetails"][0]["field"] == "Requestor-ID"
    np = system.http.get(system.sandbox + "/_sandbox/fixtures").json()["tradevest"]
    accepted = system.tv("POST", "/roles/customers", body, requestor=np["naturalPersonId"])
    assert accepted.status_code == 200


def test_sandbox_applies_only_documented_filters(system: System) -> None:
    """No externalId filter on natural persons (the docs offer none): the parameter is
    ignored, so a lookup that relied on it would match the wrong entity."""
    result = submit(system, "natural-person", NATURAL_PERSON | {"firstName": "Filtered"})
    listed = system.tv("GET", f"/entities/natural-persons?externalId={result['externalId']}")
    assert len(listed.json()["data"]) > 1  # the filter did nothing
