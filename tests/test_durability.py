"""A 2xx means on disk (#15): Redis SIGKILLed under load while its disk is slow to fsync,
restarted on the same data, still holds every delivery the receiver answered 200.

The slow disk is an LD_PRELOAD shim (compiled here with the machine's C compiler) that
makes fsync/fdatasync sleep. With `appendfsync everysec` Redis then holds writes back in
memory for up to two seconds after answering, and a SIGKILL loses them; the receiver's
default (PARTNERSYNC_DURABILITY=fsync) refuses such a server, and with `appendfsync always`
Redis fsyncs before it answers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from cli.redisserver import RedisServer, free_port
from partnersync import inbox, replication
from tests.conftest import WEBHOOK_SECRET, Proc, base_env, wait_for, wait_http

ROUTE = "/webhooks/tradevest/transfer-notification"
HEADERS = {"api-key": WEBHOOK_SECRET, "Content-Type": "application/json"}
CRASHES = 5

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>
static void slow(void) {
    const char *us = getenv("SLOW_FSYNC_US");
    const char *gate = getenv("FSYNC_GATE");  /* a disk that holds fsync while it exists */
    if (us) usleep((useconds_t)atoi(us));
    while (gate && access(gate, F_OK) == 0) usleep(1000);
}
int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    slow();
    return real(fd);
}
int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    slow();
    return real(fd);
}
"""


def slow_fsync_shim(directory: Path) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the slow-fsync shim")
    source, shim = directory / "slowfsync.c", directory / "slowfsync.so"
    source.write_text(SHIM)
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(shim), str(source), "-ldl"], check=True)
    return shim


def transfer() -> bytes:
    return (
        f'{{"transferId":"{uuid.uuid4()}","status":"PENDING",'
        '"modifiedOn":"2026-01-01T10:00:00Z","notificationType":"UPDATED"}'
    ).encode()


def test_no_acknowledged_delivery_is_lost_when_redis_is_killed(tmp_path: Path) -> None:
    acknowledged, lost = crash_under_load(tmp_path)
    assert len(acknowledged) >= CRASHES * 40
    assert lost == [], f"{len(lost)} of {len(acknowledged)} acknowledged deliveries lost"


def crash_under_load(
    tmp_path: Path, appendfsync: str = "always", durability: str = "fsync"
) -> tuple[list[str], list[str]]:
    """(acknowledged delivery ids, those missing after the crashes). With
    appendfsync="everysec", durability="none" it shows the loss the default prevents."""
    shim = slow_fsync_shim(tmp_path)
    env = dict(os.environ, LD_PRELOAD=str(shim), SLOW_FSYNC_US="300000")
    server = RedisServer(tmp_path / "redis", free_port(), appendfsync=appendfsync, env=env)
    server.start()
    port = free_port()
    receiver_env = base_env(server.url, PARTNERSYNC_DURABILITY=durability)
    receiver = Proc("receiver", ["serve", "--port", str(port)], receiver_env).start()
    url = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    lock = threading.Lock()
    try:
        wait_http(url + "/healthz")
        for _ in range(CRASHES):
            stop = threading.Event()

            def send(stop: threading.Event = stop) -> None:
                with httpx.Client(timeout=5.0) as client:
                    while not stop.is_set():
                        try:
                            response = client.post(url + ROUTE, content=transfer(), headers=HEADERS)
                        except httpx.HTTPError:
                            continue
                        if response.status_code == 200:
                            with lock:
                                acknowledged.append(response.headers["partnersync-delivery-id"])

            senders = [threading.Thread(target=send) for _ in range(8)]
            for t in senders:
                t.start()
            wanted, give_up = len(acknowledged) + 40, time.monotonic() + 60
            while len(acknowledged) < wanted:  # under load: some batches fsynced
                assert time.monotonic() < give_up, "no acknowledgements under load"
                stop.wait(0.05)
            server.kill()  # SIGKILL mid-load, fsyncs in flight
            stop.set()
            for t in senders:
                t.join()
            server.start()  # same data directory: the AOF is all that survived
        r = redis.Redis.from_url(server.url)
        held = inbox.read(r, acknowledged)
        return acknowledged, [
            d for d, h in zip(acknowledged, held, strict=True) if h is inbox.MISSING
        ]
    finally:
        receiver.stop()
        server.stop()


@pytest.mark.parametrize(
    ("replica_fsync", "acknowledged_while_held"), [("always", 0), ("everysec", 1)]
)
def test_a_replica_acknowledges_a_write_once_its_disk_has_it(
    tmp_path: Path, replica_fsync: str, acknowledged_while_held: int
) -> None:
    """#34, primary and replica crashing together (a power cut): what is a write that WAIT
    confirmed on a replica worth? Redis 7.0 has no WAITAOF. With `appendfsync always` on the
    replica too, its acknowledgement follows its fsync: while its disk holds the fsync, WAIT
    counts it not. With `everysec` (fsync in the background) it acknowledges memory."""
    shim = slow_fsync_shim(tmp_path)
    gate = tmp_path / "disk-held"
    primary = RedisServer(tmp_path / "primary", free_port())
    replica = RedisServer(
        tmp_path / "replica", free_port(), appendfsync=replica_fsync,
        env=dict(os.environ, LD_PRELOAD=str(shim), FSYNC_GATE=str(gate)),
    )  # fmt: skip
    primary.start(extra=["--repl-diskless-sync-delay", "0"])  # the replica syncs at once
    try:
        replica.start(extra=["--replicaof", "127.0.0.1", str(primary.port)])
        r = redis.Redis(port=primary.port)
        wait_for(
            lambda: r.info("replication").get("slave0", {}).get("state") == "online",
            what="the replica in sync",
        )
        assert replication.confirm(r, 1, 5000) == 1
        gate.touch()
        # the write and WAIT in one send: the replica gets the write and the request for
        # its acknowledgement together, and answers after its fsync or before it
        pipe = r.pipeline(transaction=False)
        pipe.set("k", "v")
        pipe.execute_command("WAIT", 1, 500)
        assert pipe.execute()[1] == acknowledged_while_held
        gate.unlink()
        assert r.execute_command("WAIT", 1, 5000) == 1
    finally:
        gate.unlink(missing_ok=True)
        replica.kill()  # its SIGTERM shutdown takes 10 s here: nothing to keep
        primary.stop()
