"""Exactly once under races, each made deterministic with failpoints.

Two in-process workers (each its own Context: Redis connection, HTTP client, event loop)
drive the real drain step against a sandbox and a Redis of this module's own. Worker A is
paused at a named failpoint, its lease runs out for real, worker B takes over, then A is
resumed: whatever A does after that must change nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest
import redis

from cli.redisserver import RedisServer, free_port
from jobs import drain
from partnersync import commands, config, context, failpoints, inbox, keys, store, workqueue
from schemas.commands import CommandState
from schemas.saxo.cash_transfers import PartnerCashTransferRequest
from schemas.tradevest.commands import CustomerProductData
from tests.conftest import (
    ROOT,
    SUITE_SANDBOX_LIMIT,
    SUITE_SAXO_LIMITS,
    Proc,
    needs_faketime,
    skewed_clock,
    wait_for,
    wait_http,
)

LEASE_MS = 1500
CUSTOMER = "5b0f0a52-6a43-4c42-9a8e-0c7f1f3e9a01"  # the sandbox's fixture customer
NATURAL_PERSON = "0b6f7c1e-2a4d-4f7e-9c3b-5d8e1f2a3b01"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Redis and a sandbox for this module alone (no receiver, no worker pool): nothing
    runs but what a test drives."""
    server = RedisServer(tmp_path_factory.mktemp("redis-races"), free_port())
    server.start()
    port = free_port()
    env = dict(os.environ, SANDBOX_STEP_MS="60000", PYTHONPATH=str(ROOT),
               SANDBOX_SAXO_SESSION_LIMIT=SUITE_SANDBOX_LIMIT)  # fmt: skip
    sandbox = Proc("sandbox", ["sandbox", "--port", str(port)], env).start()
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/_sandbox/faults")
    # Saxo's first answer waits for its specs to load (seconds): not inside a 1.5 s lease
    httpx.get(
        url + "/saxo/openapi/atr/v1/partner/cashtransfers",
        headers={"Authorization": "Bearer sandbox"},
        timeout=60,
    ).raise_for_status()
    env = {
        "REDIS_URL": server.url,
        "TRADEVEST_BASE_URL": url + "/tradevest",
        "SAXO_BASE_URL": url + "/saxo/openapi",
        "SAXO_TOKEN": "sandbox",
        "SAXO_FUNDING_ACCOUNT_KEY": "FUND-EUR-key==",
        "PARTNERSYNC_LEASE_MS": str(LEASE_MS),
        "PARTNERSYNC_HTTP_TIMEOUT_S": "0.5",
        "PARTNERSYNC_COALESCE_MS": "0",
        "PARTNERSYNC_RETRY_SCHEDULE_S": "0",
        "PARTNERSYNC_MAX_ATTEMPTS": "20",
        "SAXO_RATE_LIMITS": SUITE_SAXO_LIMITS,
    }
    try:
        yield {"redis": server, "sandbox": url, "env": env}
        # this module's own sandbox is held to Saxo's published contract too
        report = httpx.get(url + "/_sandbox/contract").json()
        assert report["violationCount"] == 0, report["violations"]
    finally:
        sandbox.stop()
        server.stop()


@pytest.fixture
def w(world: dict[str, Any]) -> Iterator[Worlds]:
    connection = redis.Redis.from_url(world["redis"].url)
    connection.flushall()
    httpx.post(world["sandbox"] + "/_sandbox/faults", json={}).raise_for_status()
    worlds = Worlds(connection, world["sandbox"], world["env"])
    try:
        yield worlds
    finally:
        failpoints.disarm()
        worlds.close()


class Pause:
    """A failpoint action: the worker that hits it stops there until `resume()`."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()

    def __call__(self) -> None:
        if threading.current_thread().name != "worker-A":
            return  # only A is paused; B runs straight through
        self.reached.set()
        assert self.go.wait(30), "never resumed"

    def resume(self) -> None:
        self.go.set()


class Worlds:
    def __init__(self, connection: redis.Redis, sandbox: str, env: dict[str, str]):
        self.r = connection
        self.sandbox = sandbox
        self.env = env
        self.settings = config.load(env, state_fallback=False)
        self.http = httpx.Client(timeout=10)
        self.contexts: list[context.Context] = []

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()
        self.http.close()

    def context(self) -> context.Context:
        ctx = context.Context(self.settings, redis.Redis.from_url(self.env["REDIS_URL"]))
        self.contexts.append(ctx)
        return ctx

    def wq(self) -> workqueue.WorkQueue:
        return workqueue.WorkQueue.from_settings(self.r, self.settings)

    def in_thread(self, name: str, fn: Callable[[], Any]) -> threading.Thread:
        errors: list[BaseException] = []

        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # reported by join()
                errors.append(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.errors = errors  # type: ignore[attr-defined]
        thread.start()
        return thread

    def run_until(self, ctx: context.Context, me: str, done: Callable[[], bool]) -> None:
        """Drain steps (waiting for whatever is due) until `done()`."""
        deadline = time.monotonic() + 30
        while not done():
            assert time.monotonic() < deadline, "did not get there"
            if drain.step(ctx, me) is None:
                time.sleep(0.05)

    def lease_expired(self, key: str) -> None:
        wait_for(lambda: not self.r.exists(keys.lease(key)), timeout=10, what="lease expiry")

    def tv(self, method: str, path: str, body: object = None) -> httpx.Response:
        token = self.http.post(
            self.sandbox + "/tradevest/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"},
        ).json()["access_token"]  # fmt: skip
        return self.http.request(
            method,
            self.sandbox + "/tradevest" + path,
            json=body,
            headers={"Authorization": f"Bearer {token}", "Requestor-ID": NATURAL_PERSON},
        )

    def faults(self, **spec: Any) -> None:
        self.http.post(self.sandbox + "/_sandbox/faults", json=spec).raise_for_status()

    def products(self, code: str) -> list[str]:
        items = self.tv("GET", f"/customers/{CUSTOMER}/products").json()
        return sorted(p["customerProductId"] for p in items if p["productCode"] == code)


def joined(thread: threading.Thread) -> None:
    thread.join(30)
    assert not thread.is_alive()
    assert not thread.errors, thread.errors  # type: ignore[attr-defined]


# -- 4. a paused worker's reconcile writes nothing once its lease is gone ----------------


def test_paused_reconcile_does_not_overwrite_its_successor(w: Worlds) -> None:
    transfer_id = w.tv(
        "POST",
        "/transfers",
        {"customerProductId": "8f14e45f-ceea-4e7a-8a3b-1d6b7f0c2d11", "amount": 1, "reference": "race",
         "externalId": f"race-{uuid.uuid4()}"},
    ).json()["transferId"]  # fmt: skip
    key = f"tradevest:transfer:{transfer_id}"
    w.wq().touch([key])
    pause = Pause()
    failpoints.arm("reconcile.before_write", pause)
    a = w.in_thread("worker-A", lambda: drain.step(w.context(), "job-A"))
    assert pause.reached.wait(10)  # A fetched RECEIVED and checked its lease...
    w.lease_expired(key)  # ...and stays paused past the lease
    force = {"kind": "transfer", "id": transfer_id, "status": "PROCESSED"}
    w.http.post(w.sandbox + "/_sandbox/tradevest/status", json=force).raise_for_status()
    w.wq().touch([key])
    ctx_b = w.context()
    w.run_until(
        ctx_b,
        "job-B",
        lambda: (r := store.load(w.r, [key])[0]) is not None and r.status == "PROCESSED",
    )
    pause.resume()
    joined(a)
    assert store.load(w.r, [key])[0].status == "PROCESSED"
    assert [(t.from_, t.to) for t in store.history(w.r, key)] == [(None, "PROCESSED")]
    changes = [f[b"to"] for _, f in w.r.xrange(keys.CHANGES)]
    assert changes == [b"PROCESSED"]


# -- 5. a paused worker's create never leaves after its successor's ----------------------


def paused_then_taken_over(w: Worlds, partner: str, external_id: str) -> Any:
    """Worker A journals the command SENT and stops before its request leaves; once A's
    lease is gone B runs it to the end; then A resumes. The command as B left it."""
    pause = Pause()
    failpoints.arm("commands.before_send", pause)
    a = w.in_thread("worker-A", lambda: drain.step(w.context(), "job-A"))
    assert pause.reached.wait(10)  # A journaled SENT; its request has not left
    w.lease_expired(commands.command_key(partner, external_id))
    w.run_until(w.context(), "job-B", lambda: commands.load(w.r, external_id).state.final)
    pause.resume()
    joined(a)
    return commands.load(w.r, external_id)


def test_paused_sender_does_not_send_after_its_lease(w: Worlds) -> None:
    data = PartnerCashTransferRequest(
        FromAccountKey="FUND-EUR-key==", ToAccountKey="CLIENT1-EUR-key==",
        Amount=Decimal("12.34"), Currency="EUR",
    )  # fmt: skip
    record, _ = commands.submit(
        w.r, w.wq(), "cash-transfer", data, intent_key=f"pause-{uuid.uuid4()}", settings=w.settings
    )
    done = paused_then_taken_over(w, "saxo", record.externalId)
    assert done.state == CommandState.ACCEPTED
    listed = w.http.get(
        w.sandbox + "/saxo/openapi/atr/v1/partner/cashtransfers",
        params={"ExternalReference": record.externalId},
        headers={"Authorization": "Bearer sandbox"},
    ).json()["Data"]
    assert len(listed) == 1, listed  # one booking, not two
    assert ("send", "not sent: lease deadline passed") not in [
        (x.action, x.outcome) for x in done.history
    ]  # A wrote nothing after losing its lease


def test_a_paused_cancel_does_not_cancel_twice(w: Worlds) -> None:
    """An action under the same rule as a create: A journals SENT and stops before its
    DELETE; B takes over once A's lease is gone (its lookup sees no CANCELED yet) and
    cancels; A, resumed, sends nothing. One DELETE reaches the partner (#37)."""
    from sandbox.tradevest import BALANCE_ACCOUNT_ID, DEPOSITORY_ACCOUNT_ID
    from schemas.tradevest.commands import TraditionalOrderCancel

    placed = w.tv("POST", "/trading/order/limit", {
        "depositoryCustomerProductId": DEPOSITORY_ACCOUNT_ID,
        "cashCustomerProductId": BALANCE_ACCOUNT_ID, "tradeSide": "BUY", "exchangeCode": "XFRA",
        "isin": "DE0007164600", "quantity": 1, "limitPrice": 0.5, "externalId": f"x-{uuid.uuid4()}",
    })  # fmt: skip
    order_id = placed.json()["orderId"]
    # this module's sandbox takes a minute a step: the order stays RECEIVED, cancelable
    record, _ = commands.submit(
        w.r, w.wq(), "traditional-order-cancel", TraditionalOrderCancel(orderId=uuid.UUID(order_id)),
        acting_for=NATURAL_PERSON, settings=w.settings,
    )  # fmt: skip
    done = paused_then_taken_over(w, "tradevest", record.externalId)
    assert done.state == CommandState.ACCEPTED and done.entityId == order_id
    assert w.tv("GET", f"/trading/order/{order_id}").json()["status"] == "CANCELED"
    actions = w.http.get(w.sandbox + "/_sandbox/ledger").json()["actionRequests"]
    assert actions[f"DELETE /tradevest/trading/order/{order_id}"] == 1
    assert not list(w.r.scan_iter(keys.command_scope("*", "*", "*")))  # its scope released


# -- 9. after a failover the journal may be older than the partner's truth (#34) ---------


def cash_transfer(amount: str = "12.34") -> PartnerCashTransferRequest:
    return PartnerCashTransferRequest(
        FromAccountKey="FUND-EUR-key==", ToAccountKey="CLIENT1-EUR-key==",
        Amount=Decimal(amount), Currency="EUR",
    )  # fmt: skip


def saxo_bookings(w: Worlds, external_reference: str) -> list[dict[str, Any]]:
    return w.http.get(
        w.sandbox + "/saxo/openapi/atr/v1/partner/cashtransfers",
        params={"ExternalReference": external_reference},
        headers={"Authorization": "Bearer sandbox"},
    ).json()["Data"]


def test_a_fresh_journal_is_no_proof_of_never_sent(w: Worlds) -> None:
    """The send happened on a primary that died before replicating the journal; the
    caller submits again on the promoted replica, which has no record of it. Saxo books
    an ExternalReference twice, so the first send of a fresh journal looks up first."""
    key, data = f"lost-{uuid.uuid4()}", cash_transfer()
    xid = commands.derive_external_id("saxo", "cash-transfer", key, data)
    body = {**msgspec.to_builtins(data), "Amount": float(data.Amount), "ExternalReference": xid}
    first = w.http.post(
        w.sandbox + "/saxo/openapi/atr/v1/partner/cashtransfers",
        json=body, headers={"Authorization": "Bearer sandbox"},
    )  # fmt: skip
    assert first.status_code == 201, first.text
    record, created = commands.submit(
        w.r, w.wq(), "cash-transfer", data, intent_key=key, settings=w.settings
    )
    assert created and record.externalId == xid and record.attempts == 0
    w.run_until(w.context(), "job-B", lambda: commands.load(w.r, xid).state.final)
    done = commands.load(w.r, xid)
    assert done.state == CommandState.ACCEPTED
    assert done.entityId == first.json()["TransactionId"]
    assert len(saxo_bookings(w, xid)) == 1
    assert done.attempts == 0  # found, never sent


def test_no_send_while_the_journal_is_not_on_the_replicas(w: Worlds) -> None:
    """PARTNERSYNC_MIN_REPLICAS=1 and no replica: submit says the command is not
    confirmed and queues nothing; a worker does not send until SENT is on a replica."""
    strict = config.load(
        dict(w.env, PARTNERSYNC_MIN_REPLICAS="1", PARTNERSYNC_REPLICA_TIMEOUT_MS="50"),
        state_fallback=False,
    )
    key, data = f"unreplicated-{uuid.uuid4()}", cash_transfer("7")
    with pytest.raises(commands.NotConfirmed, match="not on PARTNERSYNC_MIN_REPLICAS=1"):
        commands.submit(w.r, w.wq(), "cash-transfer", data, intent_key=key, settings=strict)
    xid = commands.derive_external_id("saxo", "cash-transfer", key, data)
    assert w.r.zscore(keys.DIRTY, commands.command_key("saxo", xid)) is None  # not queued
    # submitted again once the replicas would confirm: queued now
    _, created = commands.submit(
        w.r, w.wq(), "cash-transfer", data, intent_key=key, settings=w.settings
    )
    assert not created
    assert w.r.zscore(keys.DIRTY, commands.command_key("saxo", xid)) is not None
    # a worker that still cannot get SENT confirmed does not send
    ctx = context.Context(strict, redis.Redis.from_url(w.env["REDIS_URL"]))
    w.contexts.append(ctx)
    drain.step(ctx, "job-strict")
    held = commands.load(w.r, xid)
    assert held.state == CommandState.PENDING_SEND and held.attempts == 0
    assert held.history[-1].outcome.startswith("not sent: journal not on the replicas")
    assert saxo_bookings(w, xid) == []
    w.r.zadd(keys.DIRTY, {commands.command_key("saxo", xid): 0})  # due now, not in 5 s
    w.run_until(w.context(), "job-B", lambda: commands.load(w.r, xid).state.final)
    assert len(saxo_bookings(w, xid)) == 1


def test_a_create_written_after_its_lease_is_flagged_as_a_double_booking(w: Worlds) -> None:
    """The residual window (#34): A passes the last deadline check in the transport and
    is paused before the bytes reach the socket, past its lease; B looks up, finds nothing
    and books. A's late request then books again at Saxo, which does not deduplicate
    ExternalReference. Nothing can stop that; it must not be silent."""
    record, _ = commands.submit(
        w.r, w.wq(), "cash-transfer", cash_transfer("3"), intent_key=f"late-{uuid.uuid4()}",
        settings=w.settings,
    )  # fmt: skip
    xid, key = record.externalId, commands.command_key("saxo", record.externalId)
    pause = Pause()
    writes = iter([None, pause])  # the POST's headers go out, its body is held

    def second_write() -> None:
        if threading.current_thread().name == "worker-A":
            action = next(writes, None)
            if action is not None:
                action()

    failpoints.arm("transport.before_write", second_write)
    a = w.in_thread("worker-A", lambda: drain.step(w.context(), "job-A"))
    assert pause.reached.wait(10)  # A's last write passed its deadline check, not yet made
    w.lease_expired(key)
    ctx_b = w.context()
    w.run_until(ctx_b, "job-B", lambda: commands.load(w.r, xid).state.final)
    pause.resume()  # A's body reaches Saxo after B's lookup and booking
    joined(a)
    w.run_until(ctx_b, "job-B", lambda: commands.load(w.r, xid).auditDueMs is None)
    booked = sorted(b["TransactionId"] for b in saxo_bookings(w, xid))
    done = commands.load(w.r, xid)
    assert len(booked) == 2, (
        booked,
        [(x.action, x.outcome) for x in done.history],
        w.r.hgetall(keys.COUNTERS),
    )  # the window is real: A's bytes left after B's lookup
    assert sorted(done.doubleBooking) == booked  # ...and flagged, not silent
    assert w.r.zscore(keys.COMMAND_ATTENTION, xid) is not None
    assert int(w.r.hget(keys.COUNTERS, "double-booking")) == 1


# -- 2. two creates without an externalId never share an entity --------------------------


def product(code: str = "WALLET") -> CustomerProductData:
    return CustomerProductData(customerId=uuid.UUID(CUSTOMER), productCode=code)


def submit_product(w: Worlds, code: str = "WALLET") -> str:
    record, created = commands.submit(
        w.r, w.wq(), "customer-product", product(code), intent_key=f"p-{uuid.uuid4()}",
        acting_for=NATURAL_PERSON, settings=w.settings,
    )  # fmt: skip
    assert created
    return record.externalId


def test_two_product_commands_get_two_products(w: Worlds) -> None:
    before = w.products("WALLET")
    first = submit_product(w)
    ctx = w.context()
    w.run_until(ctx, "job-1", lambda: commands.load(w.r, first).state.final)
    # the second command's create is refused with a 503 (not acted on): its lookup must
    # not take the first command's product for its own
    w.faults(script=[{"fault": "http_5xx", "method": "POST", "path": "/products"}])
    second = submit_product(w)
    w.run_until(ctx, "job-2", lambda: commands.load(w.r, second).state.final)
    one, two = commands.load(w.r, first), commands.load(w.r, second)
    assert one.state == two.state == CommandState.ACCEPTED
    assert one.entityId != two.entityId
    assert sorted(set(w.products("WALLET")) - set(before)) == sorted([one.entityId, two.entityId])


def test_concurrent_product_commands_in_one_scope_run_one_at_a_time(w: Worlds) -> None:
    before = w.products("WALLET")
    first, second = submit_product(w), submit_product(w)  # both due in one claim
    w.faults(script=[{"fault": "http_5xx", "method": "POST", "path": "/products"}])
    ctx = w.context()
    w.run_until(ctx, "job", lambda: all(commands.load(w.r, x).state.final for x in (first, second)))
    one, two = commands.load(w.r, first), commands.load(w.r, second)
    assert one.state == two.state == CommandState.ACCEPTED
    assert one.entityId != two.entityId
    assert len(set(w.products("WALLET")) - set(before)) == 2
    assert not list(w.r.scan_iter(keys.command_scope("*", "*", "*")))  # scopes released


# -- 3. a worker whose clock runs ahead finds its own create -----------------------------


@needs_faketime
def test_worker_clock_ahead_does_not_create_twice(w: Worlds) -> None:
    before = w.products("WALLET")
    # the first create acts, its answer is lost (the worker times out after 0.5 s)
    w.faults(timeout_ms=1500, script=[{"fault": "timeout", "method": "POST", "path": "/products"}])
    xid = submit_product(w)
    code = (
        "import time\n"
        "from jobs import drain\n"
        "from partnersync import commands, context\n"
        "ctx = context.current()\n"
        f"while not commands.load(ctx.connection, {xid!r}).state.final:\n"
        "    drain.step(ctx, 'job-skewed') or time.sleep(0.05)\n"
    )
    env = skewed_clock(dict(os.environ, **w.env, PYTHONPATH=str(ROOT)), "+75s")
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, timeout=60)
    done = commands.load(w.r, xid)
    assert done.state == CommandState.ACCEPTED
    created = sorted(set(w.products("WALLET")) - set(before))
    assert created == [done.entityId], (created, [(a.action, a.outcome) for a in done.history])


# -- 8. a worker whose clock runs behind works on time -----------------------------------


@needs_faketime
def test_worker_clock_behind_claims_what_is_due(w: Worlds) -> None:
    """Due times are Redis's: a worker 60 s behind claims an event the moment it is due
    (before, it saw it due 60 s later)."""
    key = f"tradevest:transfer:{uuid.uuid4()}"
    w.wq().touch([key])
    code = (
        "from partnersync import context\n"
        "ctx = context.current()\n"
        "print(len(ctx.workqueue.claim('job-behind', 10)))\n"
    )
    env = skewed_clock(dict(os.environ, **w.env, PYTHONPATH=str(ROOT)), "-60s")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, check=True, timeout=60,
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.stdout.strip() == "1"


# -- 6. replay: one replayer per letter; an interrupted replay loses nothing -------------


def _letters(w: Worlds, n: int, *, reason: str = "reconcile", external_id: str = "x") -> list[str]:
    from datetime import UTC, datetime

    from partnersync import dlq
    from schemas.store import EntityRecord, Transition

    now = datetime.now(UTC)
    pipe = w.r.pipeline()
    for i in range(n):
        key = f"tradevest:transfer:{uuid.uuid4()}"
        transition = None
        if reason == "handler":
            record = EntityRecord(
                key=key, partner="tradevest", kind="transfer", id=key.rsplit(":", 1)[1],
                status="PROCESSED", externalId=external_id, updatedAt=now, createdAt=now,
            )  # fmt: skip
            store.write(pipe, record, None, before=None, changes_maxlen=100)
            transition = Transition(
                key=key, from_="RECEIVED", to="PROCESSED", at=now, decision="forward"
            )
        events = [dlq.DeadEvent.of(f"d-{i}", "TRANSFER_NOTIFICATION", b"{}")]
        dlq.dead_letter(pipe, key, RuntimeError("planted"), 3, now, 3600, reason=reason,
                        events=[] if reason == "handler" else events, transition=transition)  # fmt: skip
    pipe.execute()
    from partnersync import dlq as d

    return d.ids(w.r)


def test_the_same_replay_from_two_shells_calls_a_handler_once(
    w: Worlds, monkeypatch: pytest.MonkeyPatch
) -> None:
    from partnersync import replay
    from tests import handlers_fixture

    settings = config.load(
        {**w.env, "PARTNERSYNC_HANDLERS": "tests.handlers_fixture:handlers"}, state_fallback=False
    )
    monkeypatch.setenv("REDIS_URL", w.env["REDIS_URL"])  # where the fixture handler records
    (letter,) = _letters(w, 1, reason="handler")
    pause = Pause()
    failpoints.arm("replay.claimed", pause)
    results: dict[str, replay.Summary] = {}
    a = w.in_thread(
        "worker-A", lambda: results.update(a=replay.replay(w.r, settings, [letter], wait_s=0))
    )
    assert pause.reached.wait(10)  # A holds the letter, its handler not yet called
    results["b"] = replay.replay(w.r, settings, [letter], wait_s=0)
    pause.resume()
    joined(a)
    assert w.r.llen(handlers_fixture.CALLS) == 1  # called once
    assert results["b"].taken == 1 and results["a"].handlers_ok == 1
    assert w.r.zcard(keys.DLQ) == 0


def test_concurrent_requeue_of_one_letter_puts_its_events_back_once(w: Worlds) -> None:
    from partnersync import replay

    (letter,) = _letters(w, 1)
    entity = replay.dlq.get(w.r, letter).entity  # type: ignore[union-attr]
    pause = Pause()
    failpoints.arm("replay.claimed", pause)
    results: dict[str, replay.Summary] = {}
    a = w.in_thread(
        "worker-A", lambda: results.update(a=replay.replay(w.r, w.settings, [letter], wait_s=0))
    )
    assert pause.reached.wait(10)
    results["b"] = replay.replay(w.r, w.settings, [letter], wait_s=0)
    pause.resume()
    joined(a)
    assert results["b"].requeued == 1 and results["a"].taken == 1
    assert w.r.lrange(keys.events(entity), 0, -1) == [b"d-0"]  # once, not twice
    assert w.r.zscore(keys.DIRTY, entity) is not None


def test_interrupted_replay_loses_no_letter(w: Worlds) -> None:
    from partnersync import replay

    letters = _letters(w, 40)
    entities = {replay.dlq.get(w.r, x).entity for x in letters}  # type: ignore[union-attr]
    seen = {"n": 0}

    def ctrl_c() -> None:
        seen["n"] += 1
        if seen["n"] == 17:
            raise KeyboardInterrupt

    failpoints.arm("replay.claimed", ctrl_c)
    summary = replay.replay(w.r, w.settings, None, wait_s=0)
    assert summary.interrupted and summary.requeued == 16
    left = {replay.dlq.get(w.r, x).entity for x in replay.dlq.ids(w.r)}  # type: ignore[union-attr]
    due = {e for e in entities if w.r.zscore(keys.DIRTY, e) is not None}
    assert len(left) == 24 and len(due) == 16
    assert left | due == entities and not left & due  # each letter: in the DLQ, or due
    for e in due:
        assert w.r.llen(keys.events(e)) == 1


# -- 7. poison deliveries ------------------------------------------------------------------


def test_a_body_naming_one_customer_thousands_of_times_is_one_event(
    r: redis.Redis, receiver_url: str
) -> None:
    customer = str(uuid.uuid4())
    body = msgspec_json({"updatedCustomers": [customer] * 6500, "notificationType": "UPDATED"})
    assert len(body) > 250_000
    answer = deliver(receiver_url, "labels-update-notification", body)
    assert answer.status_code == 200, answer.text
    assert r.llen(keys.events(f"tradevest:customer:{customer}")) == 1
    record = inbox.read(r, [answer.headers["partnersync-delivery-id"]])[0]
    assert record.entities == (f"tradevest:customer:{customer}",)


def test_a_body_naming_more_entities_than_the_cap_is_refused_whole(
    r: redis.Redis, receiver_url: str
) -> None:
    customers = [str(uuid.uuid4()) for _ in range(1001)]  # PARTNERSYNC_MAX_ENTITIES: 1000
    body = msgspec_json({"updatedCustomers": customers, "notificationType": "UPDATED"})
    answer = deliver(receiver_url, "labels-update-notification", body)
    assert answer.status_code == 400 and answer.json()["errorCode"] == "too_many_entities"
    assert not list(r.scan_iter(keys.events("*"))) and inbox.count(r) == 0


def test_attempts_that_crash_are_counted_and_dead_lettered(w: Worlds) -> None:
    """A worker killed (or out of memory) mid-attempt never completes it: each such claim
    counts, and once the budget is spent the entity is dead-lettered with the reason
    instead of crashing workers forever."""
    from partnersync import dlq

    key = f"tradevest:transfer:{uuid.uuid4()}"
    w.wq().touch([key])
    budget = 3  # PARTNERSYNC_MAX_CRASHES
    for n in range(budget):  # three workers die holding it
        assert w.wq().claim(f"dies-{n}", 10)
        w.lease_expired(key)
    ctx = context.Context(
        config.load({**w.env, "PARTNERSYNC_MAX_CRASHES": str(budget)}, state_fallback=False),
        redis.Redis.from_url(w.env["REDIS_URL"]),
    )
    w.contexts.append(ctx)
    assert drain.step(ctx, "survivor") is not None
    (letter,) = dlq.all_letters(w.r)
    assert (
        letter.entity == key and "Crashed" in letter.error and "3 attempts in a row" in letter.error
    )
    assert w.r.zscore(keys.DIRTY, key) is None and not w.r.exists(keys.claims(key))


def msgspec_json(value: object) -> bytes:
    import msgspec

    return msgspec.json.encode(value)


def deliver(receiver_url: str, event: str, body: bytes) -> httpx.Response:
    from tests.conftest import WEBHOOK_SECRET

    return httpx.post(
        f"{receiver_url}/webhooks/tradevest/{event}",
        content=body,
        headers={"api-key": WEBHOOK_SECRET, "Content-Type": "application/json"},
        timeout=10,
    )
