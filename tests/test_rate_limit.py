"""A partner's request budget shared by every process (#35): Saxo's Session limit, 120
requests a minute per session and service group (developer.saxo rate-limiting), taken
from one bucket in Redis by every worker, and enforced by the sandbox as Saxo does."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import redis

from cli.redisserver import free_port
from partners.saxo.client import limits, service_group
from partnersync import keys
from partnersync.errors import RateLimited
from partnersync.ratelimit import Limit, Limiter
from tests.conftest import ROOT, Proc, base_env, wait_http


def test_a_bucket_paces_after_its_burst_and_a_429_stops_every_process(r: redis.Redis) -> None:
    limiter = Limiter(r, "saxo", (Limit("Session", 5, 1.0, service_group),))
    # bursts of one fewer than the partner allows (arrival jitter), then one per 1 s / 5
    assert [limiter.take("GET", "/atr/v1/partner/cashtransfers") for _ in range(4)] == [0.0] * 4
    wait = limiter.take("GET", "/atr/v1/partner/cashtransfers")
    assert 0 < wait <= 0.2
    assert limiter.take("GET", "/cm/v1/signups/status/x") == 0.0  # another service group
    # Saxo said Session is spent for 30 s: nobody sends to that group before then
    limiter.spent("GET", "/atr/v1/partner/cashtransfers", "Session", 30)
    assert limiter.take("GET", "/atr/v1/partner/cashtransfers") > 29
    with pytest.raises(RateLimited):
        asyncio.run(limiter.acquire("GET", "/atr/v1/partner/cashtransfers"))
    assert r.pttl(keys.rate("saxo", "Session", "atr")) > 29_000  # it expires


def test_the_documented_limits_are_the_default() -> None:
    found = {
        (x.dimension, x.requests, x.per_s) for x in limits("Session=120/60,AppDay=10000000/86400")
    }
    assert found == {("Session", 120, 60.0), ("AppDay", 10_000_000, 86_400.0)}


CALLER = """
import asyncio, sys
import httpx, redis
from partners.saxo import client
from partners.saxo.settings import SaxoSettings
from partnersync import config
from partnersync.ratelimit import Limiter

settings = config.load(state_fallback=False)

async def main():
    connection = redis.Redis.from_url(settings.redis_url)
    paced = sys.argv[1] == "paced"
    limiter = Limiter(connection, "saxo", client.limits(SaxoSettings.of(settings).rate_limits)) if paced else None
    async with httpx.AsyncClient(timeout=30) as http:
        saxo = client.SaxoClient(settings, http, limiter=limiter)
        answers = [(await saxo.request("GET", "/atr/v1/partner/cashtransfers")).status_code
                   for _ in range(6)]
    print(answers.count(200))

asyncio.run(main())
"""


@pytest.fixture
def small_budget_sandbox() -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, SANDBOX_SAXO_SESSION_LIMIT="5/1", PYTHONPATH=str(ROOT))
    sandbox = Proc("sandbox", ["sandbox", "--port", str(port)], env).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/_sandbox/faults")
        yield url
    finally:
        sandbox.stop()


def test_processes_sharing_one_budget_are_never_refused(
    r: redis.Redis, redis_server, small_budget_sandbox: str
) -> None:
    """Three processes, six calls each, against a sandbox that allows 5 a second: paced by
    the shared bucket, none is refused; unpaced, the sandbox refuses (the test can fail)."""
    url = small_budget_sandbox
    httpx.get(  # the first Saxo answer waits for the specs to load (another service group)
        url + "/saxo/openapi/cm/v2/signups/options",
        headers={"Authorization": "Bearer sandbox"}, timeout=60,
    )  # fmt: skip
    env = base_env(
        redis_server.url, SAXO_BASE_URL=url + "/saxo/openapi", SAXO_TOKEN="sandbox",
        SAXO_RATE_LIMITS="Session=5/1,AppDay=10000000/86400",
    )  # fmt: skip

    def run(mode: str) -> tuple[int, int]:
        before = httpx.get(url + "/_sandbox/ledger").json()["saxoSessionRefused"]
        callers = [
            subprocess.Popen([sys.executable, "-c", CALLER, mode], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
            for _ in range(3)
        ]  # fmt: skip
        answered = sum(int(c.communicate(timeout=60)[0]) for c in callers)
        refused = httpx.get(url + "/_sandbox/ledger").json()["saxoSessionRefused"] - before
        return answered, refused

    assert run("paced") == (18, 0)
    counts = r.hgetall(keys.RATE_LIMITS)
    assert int(counts[b"saxo:waited"]) > 0  # /metrics: partnersync_rate_limit_waits
    r.delete(keys.rate("saxo", "Session", "atr"))
    answered, refused = run("unpaced")
    assert refused > 0 and answered < 18
