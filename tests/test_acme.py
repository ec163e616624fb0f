"""A third partner end to end, from its own package alone (tests/acme): a signed webhook
through the receiver, reconcile and the store to a transition on the change stream, and a
command to its fake, and a page in the console, with nothing outside its package knowing it
(#36)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from cli.redisserver import RedisServer, free_port
from console import users as console_users
from partnersync import keys, store
from tests.acme import fake
from tests.conftest import ROOT, Proc, base_env, serving, wait_for, wait_http

pytestmark = pytest.mark.e2e

SECRET = "whsec_" + base64.b64encode(b"acme-signing-key-0123456789abcdef").decode()


@pytest.fixture
def acme_url() -> Iterator[str]:
    with serving(fake.app(), "acme's fake") as url:
        yield url + "/acme"


@pytest.fixture
def acme(
    redis_server: RedisServer, r: redis.Redis, acme_url: str, tmp_path: Path
) -> Iterator[dict[str, str]]:
    env = base_env(
        redis_server.url,
        PARTNERSYNC_PARTNERS="tests.acme",
        ACME_BASE_URL=acme_url,
        ACME_WEBHOOK_SECRET=SECRET,
    )
    port = free_port()
    receiver = Proc("receiver", ["serve", "--port", str(port)], env).start()
    workers = Proc("workers", ["worker", "-n", "1"], env).start()
    clock = Proc("clock", ["clock"], env).start()
    users_file = tmp_path / "users"
    console_users.add(users_file, "ops", "viewer", "acme-console-pw")
    console_port = free_port()
    console_env = dict(env, PARTNERSYNC_CONSOLE_SECRET="test-" + uuid.uuid4().hex,
                       PARTNERSYNC_CONSOLE_USERS=str(users_file),
                       PARTNERSYNC_CONSOLE_SECURE_COOKIES="false")  # fmt: skip
    console = Proc("console", ["console", "--port", str(console_port)], console_env).start()
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        wait_http(f"http://127.0.0.1:{console_port}/login")
        yield dict(env, RECEIVER=f"http://127.0.0.1:{port}",
                   CONSOLE=f"http://127.0.0.1:{console_port}")  # fmt: skip
    finally:
        for proc in (console, clock, workers, receiver):
            proc.kill()


def signed(body: bytes) -> dict[str, str]:
    """Standard Webhooks headers, computed here from the spec (not with our own code)."""
    msg_id, stamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(mac).decode(),
            "content-type": "application/json"}  # fmt: skip


def changes(r: redis.Redis, key: str) -> list[tuple[str, str]]:
    return [
        (f[b"from"].decode(), f[b"to"].decode())
        for _, f in r.xrange(keys.CHANGES)
        if f[b"key"].decode() == key
    ]


def test_a_webhook_and_a_command_of_a_partner_known_only_to_its_package(
    acme: dict[str, str], r: redis.Redis, acme_url: str
) -> None:
    receiver = acme["RECEIVER"]
    # a command: journaled, POSTed to the fake with its externalId, its entity mirrored
    done = subprocess.run(
        [sys.executable, "-m", "partnersync", "command", "submit", "payment", "--key", "k-1",
         "--data", json.dumps({"amount": "12.50"}), "--wait", "30", "--json"],
        env=acme, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    command = json.loads(done.stdout)
    assert (command["state"], command["entityStatus"]) == ("ACCEPTED", "CREATED")
    payment_id = command["entityId"]
    key = keys.entity_key("acme", "payment", payment_id)
    listed = httpx.get(acme_url + "/payments", params={"externalId": command["externalId"]})
    assert [p["id"] for p in listed.json()] == [payment_id]  # one payment, ours
    wait_for(lambda: (s := store.load(r, [key])[0]) and s.status == "CREATED", what="mirrored")

    # the partner settles it and pushes a signed webhook: answered as Acme documents it
    httpx.post(f"{acme_url}/_control/payments/{payment_id}", json={"status": "PAID"})
    body = json.dumps({"id": payment_id, "status": "PAID"}).encode()
    answer = httpx.post(receiver + "/webhooks/acme/payment.updated", content=body,
                        headers=signed(body))  # fmt: skip
    assert (answer.status_code, answer.content) == (200, b'{"received":true}')
    wait_for(lambda: ("CREATED", "PAID") in changes(r, key), what="the transition on the stream")
    assert store.load(r, [key])[0].status == "PAID"

    # refused as for any partner: a wrong signature, an event type Acme does not send
    forged = dict(signed(body), **{"webhook-signature": "v1,AAAA"})
    refused = httpx.post(receiver + "/webhooks/acme/payment.updated", content=body, headers=forged)
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    unknown = httpx.post(receiver + "/webhooks/acme/refund.created", content=body,
                         headers=signed(body))  # fmt: skip
    assert unknown.status_code == 400 and unknown.json()["error"] == "unknown_event"
    # and the partners not configured here have no routes
    other = httpx.post(receiver + "/webhooks/tradevest/transfer-notification", content=body)
    assert other.status_code == 404

    # its console page: in the menu, drawn from its own template and Redis
    with httpx.Client(base_url=acme["CONSOLE"]) as console:
        form = console.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None
        signed_in = console.post("/login", data={"name": "ops", "password": "acme-console-pw",
                                                 "csrf": csrf[1], "next": "/"})  # fmt: skip
        assert signed_in.status_code == 303, signed_in.text
        home = console.get("/")
        assert 'href="/partner/acme/payments">Acme payments</a>' in home.text
        assert "Saxo reports" not in home.text  # only the partners configured
        page = console.get("/partner/acme/payments")
        assert page.status_code == 200 and '<p id="paid">1 paid</p>' in page.text
        assert console.get("/partner/acme/nosuch").status_code == 404
        assert console.get("/partner/saxo/reports").status_code == 404
