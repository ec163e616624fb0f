"""GET /metrics: one scrape shows the receiver's, the workers' and the clock's figures."""

from __future__ import annotations

import re
import uuid

import pytest

from partnersync import keys
from tests.conftest import System

pytestmark = pytest.mark.e2e


def value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{labels} not in /metrics")


def test_metrics_cover_intake_reconcile_and_partner_calls(system: System) -> None:
    fx = system.fixtures()
    transfer = system.create_transfer(
        customerProductId=fx["balanceAccountId"],
        amount=1,
        reference="metrics",
        externalId=f"m-{uuid.uuid4()}",
    )
    key = keys.entity_key("tradevest", "transfer", transfer)
    system.wait_status(key, "PROCESSED")
    system.deliver("transfer-notification", b"{", "wrong-secret")  # an auth failure

    text = system.http.get(system.receiver + "/metrics").text
    assert (
        value(
            text,
            "partnersync_deliveries_total",
            event_type="TRANSFER_NOTIFICATION",
            source="webhook",
            outcome="accepted",
        )
        >= 2
    )
    assert (
        value(
            text,
            "partnersync_receiver_responses_total",
            event_type="TRANSFER_NOTIFICATION",
            outcome="auth_failed",
        )
        >= 1
    )
    assert value(text, "partnersync_intake_seconds_count") >= 2
    assert value(text, "partnersync_reconciles_total", outcome="applied") >= 1
    assert value(text, "partnersync_event_to_store_seconds_count") >= 1
    assert value(text, "partnersync_partner_calls_total", partner="tradevest", status="200") >= 1
    assert (
        value(
            text, "partnersync_entities", partner="tradevest", kind="transfer", status="PROCESSED"
        )
        >= 1
    )
    assert value(text, "partnersync_dlq_size") == 0
    assert value(text, "partnersync_clock_task_age_seconds", task="kick") < 30
    assert value(text, "partnersync_backlog", what="entities_due") >= 0


def test_several_receiver_processes_report_one_sum(redis_server, tmp_path) -> None:
    """WEB_CONCURRENCY=2: whichever process answers /metrics, the receiver's counters are
    the sum over both (not that process's share)."""
    import httpx

    from cli.redisserver import free_port
    from tests.conftest import WEBHOOK_SECRET, Proc, base_env, wait_http

    port = free_port()
    receiver = Proc("receiver", ["serve", "--port", str(port)],
                    base_env(redis_server.url, WEB_CONCURRENCY="2")).start()  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz")
        sent = 60
        for _ in range(sent):  # a connection each: the kernel spreads them over both
            body = (
                f'{{"transferId":"{uuid.uuid4()}","status":"PENDING",'
                '"modifiedOn":"2026-01-01T10:00:00Z","notificationType":"UPDATED"}'
            )
            answer = httpx.post(
                url + "/webhooks/tradevest/transfer-notification", content=body,
                headers={"api-key": WEBHOOK_SECRET, "Content-Type": "application/json"},
            )  # fmt: skip
            assert answer.status_code == 200
        for _ in range(10):
            text = httpx.get(url + "/metrics").text
            accepted = value(
                text, "partnersync_receiver_responses_total",
                event_type="TRANSFER_NOTIFICATION", outcome="accepted",
            )  # fmt: skip
            assert accepted == sent
            assert value(text, "partnersync_intake_seconds_count") == sent
    finally:
        receiver.stop()
