"""register-webhooks: every event type, drift reported by --check, https enforced."""

from __future__ import annotations

import pytest

from jobs.registration import RegistrationError, check_base
from partnersync import config
from schemas.tradevest.events import EVENT_TYPES
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
    assert {w["eventType"] for w in registered} == {e.name for e in EVENT_TYPES.values()}
    assert len(registered) == 26
    assert all(
        w["headers"] == [{"name": "api-key", "value": "test-webhook-secret"}] for w in registered
    )
    clean = system.cli("register-webhooks", "--url", system.receiver, "--check")
    assert clean.returncode == 0, clean.stdout + clean.stderr

    system.tv("DELETE", "/webhooks/TRANSFER_NOTIFICATION")
    system.tv(
        "POST",
        "/webhooks",
        {"eventType": "CUSTOMER_NOTIFICATION", "url": "https://elsewhere.example/x", "headers": []},
    )
    drift = system.cli("register-webhooks", "--url", system.receiver, "--check")
    assert drift.returncode == 1
    lines = {line.split()[0]: line for line in drift.stdout.splitlines()}
    assert "drift: missing" in lines["TRANSFER_NOTIFICATION"]
    assert "drift: url" in lines["CUSTOMER_NOTIFICATION"]
    assert "TRANSFER_NOTIFICATION" not in {
        w["eventType"] for w in system.tv("GET", "/webhooks").json()
    }

    fixed = system.cli("register-webhooks", "--url", system.receiver)
    assert fixed.returncode == 0 and "registered (missing)" in fixed.stdout
    assert system.cli("register-webhooks", "--url", system.receiver, "--check").returncode == 0
