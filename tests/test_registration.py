"""register-webhooks: every event type, drift reported by --check, https enforced."""

from __future__ import annotations

import pytest

from partners.tradevest.registration import RegistrationError, check_base
from partnersync import config
from schemas.tradevest.events import DOCUMENTED, to_register
from tests.conftest import System


def test_http_is_refused_unless_the_partner_is_a_local_sandbox() -> None:
    production = config.load(
        {"TRADEVEST_BASE_URL": "https://tvda-api.platform-test.tradevest.ai"}, state_fallback=False
    )
    with pytest.raises(RegistrationError, match="https"):
        check_base("http://partnersync.example.com", production)
    check_base("https://partnersync.example.com", production)
    sandbox = config.load(
        {"TRADEVEST_BASE_URL": "http://127.0.0.1:8900/tradevest"}, state_fallback=False
    )
    check_base("http://127.0.0.1:8000", sandbox)


@pytest.mark.e2e
def test_every_event_type_is_registered_and_drift_is_reported(system: System) -> None:
    registered = system.tv("GET", "/webhooks").json()
    # Tradevest's 24 documented event types; WAWEX's two only when asked for
    assert {w["eventType"] for w in registered} == set(DOCUMENTED)
    assert len(registered) == 24
    assert not {"SAVINGS_PLANS_NOTIFICATION", "TOKENIZED_ASSET_ORDER_NOTIFICATION"} & set(
        DOCUMENTED
    )
    assert all(
        w["headers"] == [{"name": "api-key", "value": "test-webhook-secret"}] for w in registered
    )
    clean = system.cli("register-webhooks", "--url", system.receiver, "--check")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    # columns as wide as their values (#39: padded to ~146 columns before)
    cells = [line.split() for line in clean.stdout.splitlines()[1:]]
    headers = ("EVENT TYPE", "STATE", "URL")
    widest = sum(max(len(h), *(len(row[n]) for row in cells)) for n, h in enumerate(headers)) + 4
    assert max(len(line) for line in clean.stdout.splitlines()) <= widest, clean.stdout

    system.tv("DELETE", "/webhooks/TRANSFER_NOTIFICATION")
    system.tv(
        "POST",
        "/webhooks",
        {"eventType": "CUSTOMER_NOTIFICATION", "url": "https://elsewhere.example/x", "headers": []},
    )
    drift = system.cli("register-webhooks", "--url", system.receiver, "--check")
    assert drift.returncode == 1
    lines = {line.split()[0]: line for line in drift.stdout.splitlines()[1:]}
    assert "drift: missing" in lines["TRANSFER_NOTIFICATION"]
    assert "drift: url" in lines["CUSTOMER_NOTIFICATION"]
    assert "TRANSFER_NOTIFICATION" not in {
        w["eventType"] for w in system.tv("GET", "/webhooks").json()
    }

    fixed = system.cli("register-webhooks", "--url", system.receiver)
    assert fixed.returncode == 0 and "registered (missing)" in fixed.stdout
    assert system.cli("register-webhooks", "--url", system.receiver, "--check").returncode == 0


def test_extras_are_registered_only_when_asked_for() -> None:
    names = [e.name for e in to_register()]
    assert len(names) == 24 and "SAVINGS_PLANS_NOTIFICATION" not in names
    opted = [e.name for e in to_register(("SAVINGS_PLANS_NOTIFICATION",))]
    assert "SAVINGS_PLANS_NOTIFICATION" in opted and len(opted) == 25


@pytest.mark.e2e
def test_sandbox_refuses_an_event_type_tradevest_does_not_have(system: System) -> None:
    answer = system.tv(
        "POST", "/webhooks",
        {"eventType": "TOKENIZED_ASSET_ORDER_NOTIFICATION", "url": "https://x.example/h"},
    )  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["errorDetails"][0]["field"] == "eventType"


@pytest.mark.e2e
def test_chosen_event_types_are_registered_or_removed(system: System) -> None:
    """--types registers only the event types named; --remove deletes their registrations
    (DELETE /webhooks/{eventType}, tradevest-api.md §2); --check reports both (#37 item 5)."""

    def registered() -> set[str]:
        return {w["eventType"] for w in system.tv("GET", "/webhooks").json()}

    def run(*args: str):
        return system.cli("register-webhooks", "--url", system.receiver, *args)

    def verbs(done) -> dict[str, str]:
        return {line.split()[0]: line for line in done.stdout.splitlines()[1:]}  # less the header

    chosen = "PROXY_NOTIFICATION,USER_NOTIFICATION"
    try:
        removed = run("--types", chosen, "--remove")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert set(verbs(removed)) == {"PROXY_NOTIFICATION", "USER_NOTIFICATION"}
        assert all("removed" in line for line in verbs(removed).values())
        assert registered() == set(DOCUMENTED) - {"PROXY_NOTIFICATION", "USER_NOTIFICATION"}
        gone = run("--types", chosen, "--remove", "--check")
        assert gone.returncode == 0 and all("ok (absent)" in v for v in verbs(gone).values())

        missing = run("--types", "PROXY_NOTIFICATION", "--check")
        assert missing.returncode == 1 and "drift: missing" in missing.stdout
        only = run("--types", "PROXY_NOTIFICATION")
        assert only.returncode == 0 and list(verbs(only)) == ["PROXY_NOTIFICATION"]
        assert "USER_NOTIFICATION" not in registered() and "PROXY_NOTIFICATION" in registered()
        left = run("--types", chosen, "--remove", "--check")
        assert left.returncode == 1
        assert "drift: registered" in verbs(left)["PROXY_NOTIFICATION"]

        unknown = run("--types", "NOPE_NOTIFICATION")
        assert unknown.returncode == 2 and "NOPE_NOTIFICATION" in unknown.stderr
    finally:
        run()  # every type back, for the tests after this one
    assert registered() == set(DOCUMENTED)
