"""Real parts: a redis-server spawned for the session on a free port (never 6379), and
real processes (receiver, workers, clock, sandbox) talking HTTP on loopback."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from cli import process, supervisor
from cli.redisserver import RedisServer, free_port
from partners.tradevest.registration import register
from partnersync import config, partner, store
from partnersync.webhooks import Registration

ROOT = Path(__file__).resolve().parent.parent
# the partners' dictionaries, which the suite's own reads of stored values need (as every
# partnersync process loads its partners)
partner.load(config.DEFAULT_PARTNERS)
WEBHOOK_SECRET = "test-webhook-secret"
SUITE_SAXO_LIMITS = "Session=100000/60,AppDay=10000000/86400"
SUITE_SANDBOX_LIMIT = "100000/60"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port())
    assert server.port != 6379
    server.start()
    yield server
    server.stop()


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A clean database for each test."""
    connection = redis.Redis.from_url(redis_server.url)
    connection.flushall()
    yield connection
    connection.close()


def base_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARTNERSYNC_", "TRADEVEST_"))}
    env.update(
        REDIS_URL=redis_url,
        TRADEVEST_WEBHOOK_SECRETS=WEBHOOK_SECRET,
        PYTHONPATH=str(ROOT),
        LOG_LEVEL="WARNING",
        PARTNERSYNC_HTTP_TIMEOUT_S="3",
        PARTNERSYNC_CLOCK_INTERVAL_S="0.2",
        PARTNERSYNC_LEASE_MS="6000",
        # the kill-heavy tests SIGKILL a worker every 2-3 s: crashes are expected there
        PARTNERSYNC_MAX_CRASHES="100",
        # Saxo's documented 120 a minute would pace the suite's hundreds of Saxo calls for
        # minutes: both sides get a larger budget (tests/test_rate_limit.py uses a small one)
        SAXO_RATE_LIMITS=SUITE_SAXO_LIMITS,
        SANDBOX_SAXO_SESSION_LIMIT=SUITE_SANDBOX_LIMIT,
    )
    env.update(extra)
    return env


LIBFAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), None)
# skipped only off CI: there make installs faketime, and a missing one must fail
needs_faketime = pytest.mark.skipif(
    LIBFAKETIME is None and not os.environ.get("CI"), reason="needs libfaketime"
)


def skewed_clock(env: dict[str, str], skew: str) -> dict[str, str]:
    """`env` for a process whose clocks are `skew` ("+120s") off, by libfaketime. Its
    0.9.10 breaks one thing in Python 3.11 either way: faking the monotonic clock too (the
    default, kept), a timed lock wait (Event.wait(1.0)) never returns; not faking it,
    time.sleep fails with EINVAL. So code run under it must never count on a timed lock
    wait returning (tests/test_skewed_clock.py)."""
    assert LIBFAKETIME is not None, "faketime is missing (make installs it)"
    return dict(env, LD_PRELOAD=str(LIBFAKETIME), FAKETIME=skew)


def settings_for(env: dict[str, str]) -> config.Settings:
    return config.load(env, state_fallback=False)


class Proc:
    def __init__(
        self, name: str, args: list[str], env: dict[str, str], prefix: list[str] | None = None
    ):
        self.name = name
        self.args = args
        self.env = env
        self.prefix = prefix or []  # e.g. ["faketime", "-f", "+120s"]: a skewed clock
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "partnersync", *self.args], env=self.env, cwd=ROOT
        )
        return self

    def stop(self, timeout: float = 15) -> None:
        process.stop(self.proc, timeout)

    def kill(self) -> None:
        """SIGKILL it and every process under it, and wait until all are gone. For the end of
        a test whose Redis is flushed before the next: a warm stop waits for in-flight jobs
        (0.3-1.5 s a test); the stops themselves are tested where they matter
        (test_worker_stop, test_failures)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        tree = [self.proc.pid, *_descendants(self.proc.pid)]
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        wait_for(lambda: all(_gone(pid) for pid in tree), timeout=10, what="killed processes")


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")  # a zombie runs nothing


def wait_http(url: str, timeout: float = 20.0) -> None:
    if not supervisor.wait_http(url, timeout=timeout):
        raise AssertionError(f"{url} did not come up within {timeout:.0f}s")


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def serving(app: Any, what: str) -> Iterator[str]:
    """`app` served by uvicorn in a thread of this process (a partner's stand-in, a test
    endpoint): its base URL while the block runs."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, what=what)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


@pytest.fixture(scope="session")
def sandbox_url() -> Iterator[str]:
    port = free_port()
    env = dict(
        os.environ, SANDBOX_STEP_MS="50", SANDBOX_SAXO_SESSION_LIMIT=SUITE_SANDBOX_LIMIT,
        PYTHONPATH=str(ROOT),
    )  # fmt: skip
    proc = Proc("sandbox", ["sandbox", "--port", str(port)], env).start()
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/_sandbox/faults")
    yield url
    # Saxo's contract, per operation, over the whole session (the oracle's figures)
    report = httpx.get(url + "/_sandbox/contract").json()
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "saxo-contract-report.json").write_text(json.dumps(report, indent=1))
    proc.stop()


@pytest.fixture(scope="session")
def system_env(redis_server: RedisServer, sandbox_url: str) -> dict[str, str]:
    return base_env(
        redis_server.url,
        TRADEVEST_BASE_URL=sandbox_url + "/tradevest",
        SAXO_BASE_URL=sandbox_url + "/saxo/openapi",
        SAXO_TOKEN="sandbox",
        SAXO_FUNDING_ACCOUNT_KEY="FUND-EUR-key==",
        SAXO_CLIENT_KEY="WLC-owner-key==",
        PARTNERSYNC_MAX_ATTEMPTS="3",
        PARTNERSYNC_RETRY_SCHEDULE_S="0.1,0.2",
        PARTNERSYNC_HANDLERS="tests.handlers_fixture:handlers",
        PARTNERSYNC_SWEEP_INTERVAL_S="1",
    )


@pytest.fixture(scope="session")
def receiver_url(system_env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    proc = Proc("receiver", ["serve", "--port", str(port)], system_env).start()
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz")
    yield url
    proc.stop()


@pytest.fixture
def system(
    request: pytest.FixtureRequest,
    r: redis.Redis,
    system_env: dict[str, str],
    receiver_url: str,
    sandbox_url: str,
):
    """Receiver + worker pool + clock + sandbox with webhooks registered, clean Redis.
    `@pytest.mark.worker_env(NAME=value)` changes the workers' and clock's environment."""
    httpx.post(sandbox_url + "/_sandbox/faults", json={}).raise_for_status()
    marker = request.node.get_closest_marker("worker_env")
    env = dict(system_env, **(marker.kwargs if marker else {}))
    # in-process: what `register-webhooks` does, without a Python start per test; in a
    # thread of its own (Playwright's sync API keeps an event loop running in this one).
    # Before the processes start: a failure here leaves none behind.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(
            asyncio.run, register(settings_for(system_env), Registration(receiver_url))
        ).result()
    workers = Proc("workers", ["worker", "-n", "2"], env).start()
    clock = Proc("clock", ["clock"], env)
    try:
        clock.start()
        system = System(r, receiver_url, sandbox_url, system_env)
        system.workers = workers
        system.clock = clock
        yield system
    finally:
        clock.kill()
        workers.kill()


class System:
    def __init__(self, r: redis.Redis, receiver: str, sandbox: str, env: dict[str, str]):
        self.r = r
        self.receiver = receiver
        self.sandbox = sandbox
        self.env = env
        self.http = httpx.Client(timeout=10)
        self._token: str | None = None

    def wait_status(self, key: str, status: str, timeout: float = 20.0):
        """The stored record of `key` once it has `status`."""
        return wait_for(
            lambda: (r := store.load(self.r, [key])[0]) and r.status == status and r,
            timeout=timeout,
            what=f"{key} {status}",
        )

    def token(self) -> str:
        if self._token is None:
            response = self.http.post(
                self.sandbox + "/tradevest/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "sandbox",
                    "client_secret": "sandbox",
                },
            )
            self._token = response.json()["access_token"]
        return self._token

    def fixtures(self) -> dict[str, str]:
        return self.http.get(self.sandbox + "/_sandbox/fixtures").json()["tradevest"]

    def tv(
        self, method: str, path: str, body: object = None, *, requestor: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}"}
        if requestor:
            headers["Requestor-ID"] = requestor
        return self.http.request(
            method, self.sandbox + "/tradevest" + path, json=body, headers=headers
        )

    def truth(self) -> dict[str, dict[str, object]]:
        """The sandbox's ledger, by entity key."""
        ledger = self.http.get(self.sandbox + "/_sandbox/ledger").json()
        return {f"{e['partner']}:{e['kind']}:{e['id']}": e for e in ledger["entities"]}

    def create_transfer(self, **body: object) -> str:
        response = self.http.post(
            self.sandbox + "/tradevest/transfers",
            json=body,
            headers={"Authorization": f"Bearer {self.token()}"},
        )
        assert response.status_code == 200, response.text
        return response.json()["transferId"]

    def partner_transfer(self, transfer_id: str) -> dict[str, object]:
        response = self.http.get(
            self.sandbox + f"/tradevest/transfers/{transfer_id}",
            headers={"Authorization": f"Bearer {self.token()}"},
        )
        assert response.status_code == 200, response.text
        return response.json()["transfer"]

    def deliver(self, event: str, body: bytes, secret: str = WEBHOOK_SECRET) -> httpx.Response:
        return self.http.post(
            f"{self.receiver}/webhooks/tradevest/{event}",
            content=body,
            headers={"api-key": secret, "Content-Type": "application/json"},
        )

    def submit_transfer(self, amount: int, reference: str) -> str:
        """A Tradevest transfer from the sandbox's balance account, submitted through the
        CLI and waited for; its externalId."""
        body = {"customerProductId": self.fixtures()["balanceAccountId"], "amount": amount,
                "reference": reference}  # fmt: skip
        submitted = self.cli(
            "command", "submit", "transfer", "--key", f"k-{uuid.uuid4()}", "--wait", "30", "--json",
            "--data", json.dumps(body),
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        return json.loads(submitted.stdout)["externalId"]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "partnersync", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture(autouse=True)
def saxo_contract(request: pytest.FixtureRequest) -> Iterator[None]:
    """Saxo's published specs are the oracle: a test fails when the sandbox answered it with
    anything off Saxo's contract (requests off it are refused with Saxo's 400 already)."""
    if "sandbox_url" not in request.fixturenames:
        yield
        return
    url = request.getfixturevalue("sandbox_url") + "/_sandbox/contract"
    before = httpx.get(url).json()["violationCount"]
    yield
    report = httpx.get(url).json()
    new = report["violationCount"] - before
    if new:
        pytest.fail(
            f"the sandbox answered {new} request(s) off Saxo's published contract: "
            f"{report['violations'][-new:]}"
        )
