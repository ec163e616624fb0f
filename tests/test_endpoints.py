"""Outbound webhook endpoints (#40, first part): kept in Redis, managed from the CLI, and a
signed test ping that the official Standard Webhooks library verifies, with the old and the
new secret alike during a rotation."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cli.redisserver import RedisServer
from tests.conftest import ROOT, base_env, serving


def cli(server: RedisServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "partnersync", "endpoints", *args],
                          env=base_env(server.url), cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


@pytest.fixture
def receiving() -> Any:
    """A service's endpoint: keeps what it was sent (body and headers)."""
    got: list[tuple[bytes, dict[str, str]]] = []

    async def hook(request: Request) -> JSONResponse:
        got.append((await request.body(), dict(request.headers)))
        return JSONResponse({"ok": True})

    with serving(Starlette(routes=[Route("/hook", hook, methods=["POST"])]), "endpoint") as url:
        yield url + "/hook", got


def test_add_list_test_rotate_remove(redis_server: RedisServer, receiving: Any) -> None:
    url, got = receiving
    added = cli(redis_server, "add", url, "--events", "tradevest.transfer.*,saxo.cash-transfer.Successful",
                "--json")  # fmt: skip
    assert added.returncode == 0, added.stderr
    made = json.loads(added.stdout)
    assert made["events"] == ["tradevest.transfer.*", "saxo.cash-transfer.Successful"]
    first_secret = made["secret"]
    listed = cli(redis_server, "list")
    assert made["id"] in listed.stdout and "active" in listed.stdout
    assert first_secret not in listed.stdout  # a secret is shown once

    pinged = cli(redis_server, "test", made["id"])
    assert pinged.returncode == 0 and "HTTP 200" in pinged.stdout, pinged.stderr
    body, headers = got[-1]
    assert Webhook(first_secret).verify(body, headers)["type"] == "partnersync.ping"

    rotated = json.loads(cli(redis_server, "rotate-secret", made["id"], "--json").stdout)
    assert rotated["secret"] != first_secret
    assert cli(redis_server, "test", made["id"]).returncode == 0
    body, headers = got[-1]
    for secret in (rotated["secret"], first_secret):  # either verifies during the rotation
        assert Webhook(secret).verify(body, headers)["endpoint"] == made["id"]
    with pytest.raises(Exception):  # noqa: B017 - the library's own verification error
        Webhook("whsec_" + "A" * 32).verify(body, headers)

    assert cli(redis_server, "remove", made["id"]).returncode == 0
    assert made["id"] not in cli(redis_server, "list").stdout


def test_bad_endpoints_are_refused_with_a_message(redis_server: RedisServer) -> None:
    for args, said in (
        (("add", "http://example.com/hook", "--events", "tradevest.*"), "use https"),
        (("add", "https://example.com/hook", "--events", "nosuch.*"), "matches no partner"),
        (("add", "ftp://example.com/hook", "--events", "tradevest.*"), "not an http(s) URL"),
        (("add", "https://example.com/hook", "--events", "a.b.c.d"), "at most three parts"),
        (("remove", "ep_nosuch"), "no endpoint"),
        (("test", "ep_nosuch"), "no endpoint"),
    ):
        done = cli(redis_server, *args)
        assert done.returncode == 2 and said in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_an_endpoint_that_does_not_answer_is_a_message(redis_server: RedisServer) -> None:
    from cli.redisserver import free_port

    made = json.loads(cli(redis_server, "add", f"http://127.0.0.1:{free_port()}/hook",
                          "--events", "saxo.*", "--json").stdout)  # fmt: skip
    done = cli(redis_server, "test", made["id"])
    assert done.returncode == 1 and "ConnectError" in done.stderr and "Traceback" not in done.stderr


def test_an_endpoint_wants_the_changes_its_patterns_name() -> None:
    from datetime import UTC, datetime

    from partnersync import endpoints, partner
    from partnersync.config import DEFAULT_PARTNERS

    kinds = partner.load(DEFAULT_PARTNERS).kinds
    events = endpoints.check_events(["tradevest.*", " saxo.cash-transfer.Successful "], kinds)
    assert events == ["tradevest.*.*", "saxo.cash-transfer.Successful"]
    e = endpoints.Endpoint(id="ep_x", url="https://x.example", events=events, secrets=[],
                           createdAt=datetime.now(UTC))  # fmt: skip
    assert e.wants("tradevest", "transfer", "PROCESSED")
    assert e.wants("saxo", "cash-transfer", "Successful")
    assert not e.wants("saxo", "cash-transfer", "Failed") and not e.wants("saxo", "signup", "x")
