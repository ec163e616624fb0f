"""Redis failover on Redis's own machinery (#15): a primary, a replica and three Sentinels
started here; the primary SIGKILLed under load. The receiver answers 503 during the switch,
never a 2xx that is then lost (PARTNERSYNC_MIN_REPLICAS=1: an acknowledgement waits for
the replica), and every process (receiver, workers, clock, CLI) carries on against the new
primary without a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from cli.redisserver import free_port
from partnersync import commands, inbox, keys, redisurl, store
from partnersync.config import ConfigError
from schemas.commands import CommandState
from tests.cluster import Cluster
from tests.conftest import ROOT, WEBHOOK_SECRET, Proc, base_env, wait_for, wait_http

ROUTE = "/webhooks/tradevest/transfer-notification"
HEADERS = {"api-key": WEBHOOK_SECRET, "Content-Type": "application/json"}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


def transfer(transfer_id: str | None = None) -> bytes:
    return (
        f'{{"transferId":"{transfer_id or uuid.uuid4()}","status":"PENDING",'
        '"modifiedOn":"2026-01-01T10:00:00Z","notificationType":"UPDATED"}'
    ).encode()


def test_sentinel_url_is_parsed_and_refused_when_malformed() -> None:
    found = redisurl.sentinels("redis+sentinel://:pw@h1:26379,[::1]:26380/main/2")
    assert found is not None
    assert found.addresses == (("h1", 26379), ("::1", 26380))
    assert (found.master, found.db, found.password) == ("main", 2, "pw")
    assert redisurl.sentinels("redis://localhost:6379/0") is None
    for bad in (
        "redis+sentinel://h1:26379",
        "redis+sentinel://h1/main",
        "redis+sentinel://h:1/m/x",
    ):
        with pytest.raises(ConfigError):
            redisurl.sentinels(bad)


def test_failover_loses_no_acknowledged_delivery(cluster: Cluster, sandbox_url: str) -> None:
    """Also #34: a Saxo cash transfer submitted while the replica is cut off (its journal
    would reach the primary only) is not sent; submitted again on the promoted replica,
    which knows nothing of it, it is booked once, not twice."""
    env = base_env(
        cluster.url,
        TRADEVEST_BASE_URL=sandbox_url + "/tradevest",
        SAXO_BASE_URL=sandbox_url + "/saxo/openapi",
        SAXO_TOKEN="sandbox",
        SAXO_FUNDING_ACCOUNT_KEY="FUND-EUR-key==",
        PARTNERSYNC_MIN_REPLICAS=os.environ.get("TEST_MIN_REPLICAS", "1"),  # 0: see it lose
        PARTNERSYNC_REPLICA_TIMEOUT_MS="200",
    )
    replicated = env["PARTNERSYNC_MIN_REPLICAS"] != "0"
    key = f"failover-{uuid.uuid4()}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    receiver = Proc("receiver", ["serve", "--port", str(port)], env).start()
    workers = Proc("workers", ["worker", "-n", "1"], env).start()
    clock = Proc("clock", ["clock"], env).start()
    acknowledged: list[str] = []
    acked_at: list[float] = []
    statuses: Counter[int] = Counter()
    lock, stop = threading.Lock(), threading.Event()

    def send() -> None:
        with httpx.Client(timeout=5.0) as client:
            while not stop.is_set():
                try:
                    response = client.post(url + ROUTE, content=transfer(), headers=HEADERS)
                except httpx.HTTPError:
                    continue
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code == 200:
                        acknowledged.append(response.headers["partnersync-delivery-id"])
                        acked_at.append(time.monotonic())
                if response.status_code != 200:
                    time.sleep(0.05)  # a sender backs off on 503

    senders = [threading.Thread(target=send) for _ in range(4)]
    try:
        wait_http(url + "/readyz")
        for t in senders:
            t.start()
        wait_for(lambda: len(acknowledged) >= 60, timeout=60, what="acknowledgements under load")
        # The replica falls behind (stopped, its link cut), deliveries keep coming, then the
        # primary dies: what only it held is gone. With MIN_REPLICAS=1 none of it was a 2xx.
        assert cluster.replica.proc is not None
        cluster.replica.proc.send_signal(signal.SIGSTOP)
        redis.Redis(port=cluster.primary.port).client_kill_filter(_type="replica")
        answered = sum(statuses.values())
        wait_for(lambda: sum(statuses.values()) >= answered + 8, what="answers, replica behind")
        first = submit_cash_transfer(env, key)
        primary = redis.Redis(port=cluster.primary.port)
        xid = next(f for h in primary.scan_iter("ps:cmds:*") for f in primary.hkeys(h)).decode()
        if replicated:
            assert first.returncode == 75, (first.stdout, first.stderr)  # EX_TEMPFAIL
            assert "not on PARTNERSYNC_MIN_REPLICAS=1 replicas" in first.stderr, first.stderr
            # a worker has every chance to send it now (it would in milliseconds): none may
            with pytest.raises(AssertionError):
                wait_for(lambda: saxo_bookings(sandbox_url, xid), timeout=1, what="a booking")
        killed_t = time.monotonic()
        cluster.primary.kill()  # SIGKILL mid-load
        cluster.replica.proc.send_signal(signal.SIGCONT)
        killed_at = len(acknowledged)
        wait_for(
            lambda: all(s.primary_port() == cluster.replica.port for s in cluster.sentinels),
            timeout=60,
            what="sentinels to promote the replica",
        )
        # the old primary comes back as the new primary's replica (as an orchestrator
        # restarts it; the Sentinels would reconfigure it too, some seconds later), and
        # acknowledgements, which need one replica, resume
        cluster.primary.start(extra=["--replicaof", "127.0.0.1", str(cluster.replica.port)])
        wait_for(lambda: len(acknowledged) >= killed_at + 60, timeout=60, what="2xx again")
        new = redis.Redis(port=cluster.replica.port)
        if replicated:
            assert commands.load(new, xid) is None  # the journal went with the old primary
        # the caller submits it again (refused while the old primary resyncs: no replica)
        again = wait_for(
            lambda: (p := submit_cash_transfer(env, key)).returncode == 0 and p,
            timeout=60,
            what="submit",
        )
        assert json.loads(again.stdout)["externalId"] == xid
        done = wait_for(
            lambda: (c := commands.load(new, xid)) is not None and c.state.final and c,
            timeout=60,
            what="the command final on the new primary",
        )
        assert done.state == CommandState.ACCEPTED
        assert len(saxo_bookings(sandbox_url, xid)) == 1  # before #34: two
    finally:
        stop.set()
        for t in senders:
            t.join()
    # one replica and MIN_REPLICAS=1: no 2xx until the old primary is back as a replica
    first_after = next((t for t in acked_at if t > killed_t), None)
    if first_after is not None:
        print(f"\nFAILOVER one replica: first 2xx {first_after - killed_t:.1f} s after the kill")
    try:
        assert statuses[503] > 0, f"no 503 during the switch: {statuses}"
        assert set(statuses) <= {200, 503}, statuses
        # the primary the Sentinels agree on now (the promoted replica, unless they failed
        # over once more): every acknowledged delivery must be there
        primary = wait_for(
            lambda: (
                len({s.primary_port() for s in cluster.sentinels}) == 1
                and cluster.sentinels[0].primary_port()
            ),
            timeout=30,
            what="the sentinels to agree on a primary",
        )
        new = redis.Redis(port=primary)
        assert new.info("replication")["role"] == "master"
        held = inbox.read(new, acknowledged)
        lost = [d for d, h in zip(acknowledged, held, strict=True) if h is inbox.MISSING]
        assert lost == [], f"{len(lost)} of {len(acknowledged)} acknowledged deliveries lost"

        # processing resumes on the new primary: a transfer created now is reconciled
        token = httpx.post(
            sandbox_url + "/tradevest/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "sandbox",
                "client_secret": "sandbox",
            },
        ).json()["access_token"]
        fixtures = httpx.get(sandbox_url + "/_sandbox/fixtures").json()["tradevest"]
        created = httpx.post(
            sandbox_url + "/tradevest/transfers",
            json={
                "customerProductId": fixtures["balanceAccountId"],
                "amount": 10,
                "reference": "after failover",
                "externalId": f"failover-{uuid.uuid4()}",
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 200, created.text
        transfer_id = created.json()["transferId"]
        assert (
            httpx.post(url + ROUTE, content=transfer(transfer_id), headers=HEADERS).status_code
            == 200
        )
        key = keys.entity_key("tradevest", "transfer", transfer_id)
        # fetched from the partner and stored on the new primary (its status is whatever
        # the sandbox's transfer has reached by then; this receiver is not registered for
        # the sandbox's own webhooks)
        record = wait_for(
            lambda: store.load(new, [key])[0],
            timeout=120,  # behind the load's made-up transfers, each a GET
            what="the new transfer reconciled on the new primary",
        )
        assert record.status in ("RECEIVED", "PENDING", "PROCESSED"), record.status

        # the CLI finds the primary through the Sentinels too
        status = subprocess.run(
            [sys.executable, "-m", "partnersync", "status"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
    finally:
        clock.stop()
        workers.stop()
        receiver.stop()


def submit_cash_transfer(env: dict[str, str], key: str) -> subprocess.CompletedProcess[str]:
    data = '{"FromAccountKey":"FUND-EUR-key==","ToAccountKey":"CLIENT1-EUR-key==","Amount":10,"Currency":"EUR"}'
    return subprocess.run(
        [sys.executable, "-m", "partnersync", "command", "submit", "cash-transfer",
         "--key", key, "--data", data, "--json"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def saxo_bookings(sandbox_url: str, external_reference: str) -> list[dict[str, object]]:
    return httpx.get(
        sandbox_url + "/saxo/openapi/atr/v1/partner/cashtransfers",
        params={"ExternalReference": external_reference},
        headers={"Authorization": "Bearer sandbox"},
    ).json()["Data"]
