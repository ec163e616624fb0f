"""A worker host cut off mid-create, for real (#34): hosts are network namespaces of this
test's own, linked by veth pairs; a cut is a link taken down, as a switch port failing.

    test process ──veth── core: Redis, the sandbox, the clock, worker B
                           └──veth── host A: worker A

Worker A journals a Saxo cash transfer SENT and writes its POST into a keep-alive
connection just as host A loses its link: the request is in A's kernel, retransmitted into
the void. A's lease runs out, worker B looks up (nothing) and books it. When the link
heals, nothing of A's request may still arrive: A aborted it at the socket (RST, the
kernel drops what it holds) before its lease could expire.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from partnersync import commands, workqueue
from schemas.commands import CommandState
from schemas.saxo.cash_transfers import PartnerCashTransferRequest
from tests.conftest import ROOT, SUITE_SANDBOX_LIMIT, Proc, base_env, settings_for, wait_for

pytestmark = pytest.mark.skipif(
    not (os.geteuid() == 0 and shutil.which("ip") and shutil.which("ss")),
    reason="needs root and iproute2 (network namespaces)",
)

REDIS_PORT, SANDBOX_PORT = 6379, 8900  # inside core, a network namespace of our own


def ip(*args: str, ns: str | None = None) -> str:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


class Hosts:
    """`core` and `a`, two network namespaces; `core_ip` is core as the test process
    reaches it, `core_from_a` as host A does."""

    def __init__(self) -> None:
        n = os.getpid() % 250 + 1
        self.core, self.a = f"ps-core-{os.getpid()}", f"ps-a-{os.getpid()}"
        self.test_link, self.a_link = f"psr{n}", f"psa{n}"  # interface names, ≤ 15 characters
        self.core_ip, self.core_from_a = f"10.231.{n}.2", f"10.231.{n}.5"
        ip("ip", "netns", "add", self.core)
        ip("ip", "netns", "add", self.a)
        ip("ip", "link", "add", self.test_link, "type", "veth", "peer", "name", "eth0", "netns", self.core)  # fmt: skip
        ip("ip", "addr", "add", f"10.231.{n}.1/30", "dev", self.test_link)
        ip("ip", "link", "set", self.test_link, "up")
        ip("ip", "addr", "add", f"{self.core_ip}/30", "dev", "eth0", ns=self.core)
        ip("ip", "link", "set", "eth0", "up", ns=self.core)
        ip("ip", "link", "set", "lo", "up", ns=self.core)
        ip("ip", "link", "add", self.a_link, "netns", self.core, "type", "veth", "peer", "name", "eth0", "netns", self.a)  # fmt: skip
        ip("ip", "addr", "add", f"{self.core_from_a}/30", "dev", self.a_link, ns=self.core)
        ip("ip", "link", "set", self.a_link, "up", ns=self.core)
        ip("ip", "addr", "add", f"10.231.{n}.6/30", "dev", "eth0", ns=self.a)
        ip("ip", "link", "set", "eth0", "up", ns=self.a)
        ip("ip", "link", "set", "lo", "up", ns=self.a)

    def cut_a(self, cut: bool) -> None:
        """Host A loses (or gets back) its only link: to Redis and to the partner alike."""
        ip("ip", "link", "set", self.a_link, "down" if cut else "up", ns=self.core)

    def unacknowledged(self, ns: str, peer: str) -> list[str]:
        """The TCP sockets in `ns` holding bytes for `peer` that it never acknowledged."""
        lines = ip("ss", "-tnH", "state", "all", "dst", peer, ns=ns).splitlines()
        return [line for line in lines if int(line.split()[2]) > 0]  # State Recv-Q Send-Q …

    def remove(self) -> None:
        for ns in (self.a, self.core):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", self.test_link], capture_output=True, timeout=10)


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    h = Hosts()
    try:
        yield h
    finally:
        h.remove()


def in_ns(ns: str) -> list[str]:
    return ["ip", "netns", "exec", ns]


def env_for(host: str, **extra: str) -> dict[str, str]:
    """What a process on a host reaching core at `host` is configured with."""
    return base_env(
        f"redis://{host}:{REDIS_PORT}/0",
        TRADEVEST_BASE_URL=f"http://{host}:{SANDBOX_PORT}/tradevest",
        SAXO_BASE_URL=f"http://{host}:{SANDBOX_PORT}/saxo/openapi",
        SAXO_TOKEN="sandbox",
        SAXO_FUNDING_ACCOUNT_KEY="FUND-EUR-key==",
        PARTNERSYNC_HTTP_TIMEOUT_S="1",
        PARTNERSYNC_LEASE_MS="4000",
        PARTNERSYNC_RETRY_SCHEDULE_S="0.5",
        **extra,
    )


def stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "T"


def test_a_worker_cut_off_mid_create_books_it_once(hosts: Hosts, tmp_path: Path) -> None:
    redis_server = subprocess.Popen(
        [*in_ns(hosts.core), "redis-server", "--port", str(REDIS_PORT), "--bind", "0.0.0.0",
         "--protected-mode", "no", "--dir", str(tmp_path), "--appendonly", "yes",
         "--appendfsync", "always", "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # a partner's edge may keep an idle connection open for minutes; uvicorn's 5 s would
    # close it during the cut, and A's late bytes would be refused by the closed socket
    sandbox_env = dict(
        os.environ, SANDBOX_STEP_MS="50", SANDBOX_KEEP_ALIVE_S="300", PYTHONPATH=str(ROOT),
        SANDBOX_SAXO_SESSION_LIMIT=SUITE_SANDBOX_LIMIT,
    )  # fmt: skip
    sandbox = Proc(
        "sandbox", ["sandbox", "--host", "0.0.0.0", "--port", str(SANDBOX_PORT)], sandbox_env,
        prefix=in_ns(hosts.core),
    ).start()  # fmt: skip
    core_env = env_for("127.0.0.1")
    processes = [sandbox]
    try:
        r = redis.Redis(host=hosts.core_ip, port=REDIS_PORT, socket_timeout=5)
        wait_for(lambda: _pings(r), what="Redis in core")
        saxo = f"http://{hosts.core_ip}:{SANDBOX_PORT}/saxo/openapi/atr/v1/partner/cashtransfers"
        auth = {"Authorization": "Bearer sandbox"}
        wait_for(lambda: _answers(saxo, auth), timeout=60, what="the sandbox's Saxo specs loaded")
        processes.append(Proc("clock", ["clock"], core_env, prefix=in_ns(hosts.core)).start())
        a = Proc(
            "worker A", ["worker", "--single"],
            env_for(hosts.core_from_a, PARTNERSYNC_FAILPOINTS="commands.before_send=stop"),
            prefix=in_ns(hosts.a),
        ).start()  # fmt: skip
        processes.append(a)
        assert a.proc is not None

        data = PartnerCashTransferRequest(
            FromAccountKey="FUND-EUR-key==", ToAccountKey="CLIENT1-EUR-key==",
            Amount=Decimal("25"), Currency="EUR",
        )  # fmt: skip
        settings = settings_for(env_for(hosts.core_ip))
        wq = workqueue.WorkQueue.from_settings(r, settings)
        record, _ = commands.submit(
            r, wq, "cash-transfer", data, intent_key=f"cut-{uuid.uuid4()}", settings=settings
        )
        xid = record.externalId

        def bookings() -> list[Any]:
            return httpx.get(saxo, params={"ExternalReference": xid}, headers=auth).json()["Data"]

        # A looked up (nothing), journaled SENT, and stopped right before its POST
        wait_for(lambda: stopped(a.proc.pid), timeout=30, what="worker A at its send")
        assert commands.load(r, xid).state == CommandState.SENT
        hosts.cut_a(True)
        a.proc.send_signal(signal.SIGCONT)
        partner = f"{hosts.core_from_a}:{SANDBOX_PORT}"
        # the POST left A's process into the partition: its bytes wait in A's kernel...
        wait_for(lambda: hosts.unacknowledged(hosts.a, partner), what="A's POST in flight")
        # ...until A gives up on the answer and aborts the connection: nothing is left to
        # retransmit (a plain close leaves it in FIN-WAIT-1, retransmitting for minutes)
        wait_for(
            lambda: not hosts.unacknowledged(hosts.a, partner),
            timeout=10,
            what="A's request dropped by its kernel",
        )
        # A's lease expires; B (on core) looks up, finds nothing, books it
        processes.append(Proc("worker B", ["worker", "--single"], core_env, prefix=in_ns(hosts.core)).start())  # fmt: skip
        done = wait_for(
            lambda: (c := commands.load(r, xid)) is not None and c.state.final and c,
            timeout=60,
            what="B to finish the command",
        )
        assert done.state == CommandState.ACCEPTED
        hosts.cut_a(False)  # the partition heals: A's request must not arrive now
        with pytest.raises(AssertionError):
            wait_for(lambda: len(bookings()) > 1, timeout=1.5, what="a second booking")
        assert [b["TransactionId"] for b in bookings()] == [done.entityId]
    finally:
        for p in reversed(processes):
            if p.proc is not None and p.proc.poll() is None:
                p.proc.send_signal(signal.SIGCONT)
            p.stop()
        redis_server.terminate()
        redis_server.wait(10)


def _pings(r: redis.Redis) -> bool:
    try:
        return bool(r.ping())
    except redis.RedisError:
        return False


def _answers(url: str, headers: dict[str, str]) -> bool:
    try:
        return httpx.get(url, headers=headers, timeout=30).status_code == 200
    except httpx.HTTPError:
        return False
