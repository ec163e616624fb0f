"""Retries, the DLQ and replay, the worker pool's lifecycle."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid

import psutil
import pytest

from partnersync import dlq, keys, store
from partnersync.retry import backoff_ms
from tests.conftest import ROOT, Proc, System, wait_for


def test_retry_schedule_is_jittered_and_honours_retry_after() -> None:
    schedule = (5.0, 60.0, 300.0)
    delays = [backoff_ms(0, schedule, None) for _ in range(200)]
    assert 4000 <= min(delays) < max(delays) <= 6000  # ±20%, not all equal
    assert 0.8 * 300_000 <= backoff_ms(7, schedule, None) <= 1.2 * 300_000  # the last repeats
    assert backoff_ms(0, schedule, 120.0) == 120_000  # Retry-After is the floor


@pytest.mark.e2e
def test_partner_outage_is_dead_lettered_and_replay_applies_it(system: System) -> None:
    fx = system.fixtures()
    transfer = system.create_transfer(
        customerProductId=fx["balanceAccountId"],
        amount=1,
        reference="outage",
        externalId=f"o-{uuid.uuid4()}",
    )
    key = keys.entity_key("tradevest", "transfer", transfer)
    system.wait_status(key, "PROCESSED")
    system.r.hdel(*store.value_bucket(key))  # forget it: the next event must re-create it
    system.http.post(system.sandbox + "/_sandbox/faults", json={"http_5xx": 1.0})
    try:
        body = json.dumps({"transferId": transfer, "status": "PROCESSED", "modifiedOn": "2026-01-02T00:00:00Z",
                           "notificationType": "UPDATED"}).encode()  # fmt: skip
        assert (
            system.deliver("transfer-notification", body).headers["partnersync-outcome"]
            == "accepted"
        )
        # (the sweeper's transaction reconciles meet the same outage: letters of their own)
        (letter,) = wait_for(
            lambda: [x for x in dlq.all_letters(system.r) if x.entity == key],
            timeout=30,
            what="dead letter",
        )
        assert letter.attempts == 3 and "503" in letter.error
        filtered = system.cli("dlq", "list", "--kind", "transfer", "--error", "503", "--json")
        assert [json.loads(line)["id"] for line in filtered.stdout.splitlines()] == [letter.id]
        assert system.cli("dlq", "list", "--kind", "customer", "--json").stdout == ""
    finally:
        system.http.post(system.sandbox + "/_sandbox/faults", json={})
    replayed = system.cli("dlq", "replay", "--filter", "kind=transfer,since=1h", "--json")
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    summary = json.loads(replayed.stdout)
    assert summary == {
        "letters": 1,
        "requeued": 1,
        "handlers_ok": 0,
        "handlers_failed": 0,
        "missing": 0,
        "taken_by_another_replay": 0,
        "entities": 1,
        "entities_applied": 1,
        "entities_failed_again": 0,
        "entities_still_pending": 0,
        "interrupted": False,
        "outcomes": {"applied": [key]},  # the entities, named
    }
    assert store.load(system.r, [key])[0].status == "PROCESSED"
    assert [x for x in dlq.all_letters(system.r) if x.entity == key] == []
    # replaying again finds nothing and changes nothing
    assert system.cli("dlq", "replay", "--all", "--json").returncode == 0
    assert [t.to for t in store.history(system.r, key)] == ["PROCESSED"]


def test_pool_restarts_a_killed_worker_and_stops_on_sigterm(r, system_env) -> None:
    pool = Proc("workers", ["worker", "-n", "2"], system_env).start()
    try:
        parent = psutil.Process(pool.proc.pid)
        children = wait_for(lambda: len(c := parent.children()) == 2 and c, what="2 workers")
        children[0].send_signal(signal.SIGKILL)
        wait_for(lambda: len(parent.children()) == 2 and children[0].pid not in {c.pid for c in parent.children()},
                 what="a replacement worker")  # fmt: skip
        survivors = parent.children()
        started = time.monotonic()
        pool.proc.send_signal(signal.SIGTERM)
        assert pool.proc.wait(timeout=40) == 0
        assert time.monotonic() - started < 35  # within the grace period
        assert not any(
            psutil.pid_exists(c.pid) and c.status() != psutil.STATUS_ZOMBIE for c in survivors
        )
    finally:
        pool.stop()


def test_workers_do_not_outlive_a_killed_pool(r, system_env) -> None:
    """The pool SIGKILLed (the OOM killer, kill -9, a supervisor out of patience): its
    workers stop too (warm shutdown), not run on unsupervised beside the pool that replaces
    it."""
    pool = Proc("workers", ["worker", "-n", "1"], system_env).start()
    child = None
    try:
        parent = psutil.Process(pool.proc.pid)
        (child,) = wait_for(lambda: len(c := parent.children()) == 1 and c, what="a worker")
        pool.proc.send_signal(signal.SIGKILL)
        pool.proc.wait(timeout=10)

        def gone() -> bool:
            return not child.is_running() or child.status() == psutil.STATUS_ZOMBIE

        wait_for(gone, timeout=30, what="the orphaned worker to stop")
    finally:
        pool.stop()
        if child is not None and child.is_running():  # failed: leave no orphan behind
            child.kill()


def test_restart_delays_back_off_and_reset_after_a_healthy_run() -> None:
    from jobs.worker import Backoff

    backoff = Backoff(first=0.5, cap=8.0, healthy=60.0)
    delays = [backoff.next_delay(uptime=0.1) for _ in range(7)]
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0]  # a crash loop backs off
    assert backoff.next_delay(uptime=61.0) == 0.0  # up a minute: the next crash restarts at once
    assert backoff.next_delay(uptime=0.1) == 0.5
    assert backoff.next_delay(uptime=0.1, killed=True) == 0.0  # SIGKILLed: not a crash loop


def test_pool_backs_off_a_worker_that_keeps_crashing(system_env, tmp_path) -> None:
    """Every worker dies at start (the `worker.start` failpoint exits). The pool restarts
    each slot with growing delays and says why, instead of hundreds of restarts a minute.
    (Handlers that cannot be loaded stop the pool before it starts a worker, test_cli; an
    unreachable Redis no longer crashes a worker: it waits, see test_edge.)"""
    env = dict(system_env, PARTNERSYNC_FAILPOINTS="worker.start=exit", LOG_LEVEL="WARNING")
    log = tmp_path / "pool.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "partnersync", "worker", "-n", "1"],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for(
                lambda: log.read_text().count("worker exited, restarting") >= 4,
                timeout=30,
                what="four restarts",
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    lines = [json.loads(x) for x in log.read_text().splitlines() if "restarting" in x]
    delays = [x["restartInS"] for x in lines[:4]]
    assert delays == sorted(delays) and delays[0] < delays[3]  # growing, not immediate
    assert all(x["reason"].startswith("exited with status") for x in lines)  # says why
