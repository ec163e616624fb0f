"""Outbound webhooks (#40): the mirror's changes delivered to the team's endpoints by the
worker pool, signed (verified with the official standardwebhooks library), at least once,
in order per entity, retried on the schedule, dead-lettered per endpoint, replayable.

Every test runs the real worker pool and clock against the suite's Redis; the endpoints are
Starlette apps served by uvicorn in this process (`Endpoint`), told what to answer."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import httpx
import msgspec
import pytest
import redis
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from partnersync import endpoints, keys, outbound, sender, store
from schemas.outbound import ChangeEvent
from tests.conftest import ROOT, System, serving, wait_for

Answer = Callable[[dict[str, Any], int], Any]  # (payload, nth arrival of its id) -> answer


class Arrival(NamedTuple):
    payload: dict[str, Any]
    body: bytes
    headers: dict[str, str]
    status: int  # what it was answered (0: not yet)
    at: float  # time.monotonic() when it came


class Endpoint:
    """A team's service: records every arrival and answers what `answer` says for it: a
    status, (status, headers), or ("sleep", seconds, status)."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.seen: dict[str, int] = {}
        self.answer: Answer = lambda payload, nth: 200
        self.lock = threading.Lock()
        self.holding = threading.Event()  # a "hold" answer is waiting

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        payload, headers, at = json.loads(body), dict(request.headers), time.monotonic()
        with self.lock:
            nth = self.seen[headers["webhook-id"]] = self.seen.get(headers["webhook-id"], 0) + 1
            self.arrivals.append(Arrival(payload, body, headers, 0, at))
            mine = len(self.arrivals) - 1
        answer = self.answer(payload, nth)
        if isinstance(answer, tuple) and answer[0] == "sleep":
            await asyncio.sleep(answer[1])
            answer = answer[2]
        elif isinstance(answer, tuple) and answer[0] == "hold":  # until the test lets go
            self.holding.set()
            while not answer[1].is_set():
                await asyncio.sleep(0.01)
            answer = answer[2]
        status, extra = answer if isinstance(answer, tuple) else (answer, {})
        with self.lock:
            self.arrivals[mine] = self.arrivals[mine]._replace(status=status)
        return Response(b"" if status == 204 else b"{}", status, headers=extra,
                        media_type="application/json")  # fmt: skip

    def oks(self) -> list[dict[str, Any]]:
        """The data of each arrival answered 2xx, in order."""
        with self.lock:
            return [a.payload["data"] for a in self.arrivals if 200 <= a.status < 300]

    def tries(self, change_id: str) -> list[Arrival]:
        with self.lock:
            return [a for a in self.arrivals if a.headers["webhook-id"] == change_id]


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Endpoint]]:
    service = Endpoint()
    app = Starlette(routes=[Route("/hook", service.hook, methods=["POST"])])
    with serving(app, "endpoint") as url:
        yield url + "/hook", service


# statuses of their own: the suite's sandbox keeps finishing earlier tests' transfers, whose
# real changes (RECEIVED, PENDING…) must not reach these tests' endpoints
LIFECYCLE = ["T1_RECEIVED", "T2_PENDING", "T3_PROCESSED"]
OURS = "tradevest.transfer.T?_*"


def change(r: redis.Redis, entity: str, frm: str, to: str) -> str:
    """A stored transition, as store.write appends it to the change stream."""
    partner, kind, ident = entity.split(":", 2)
    return r.xadd(keys.CHANGES, {
        "key": entity, "partner": partner, "kind": kind, "id": ident, "from": frm, "to": to,
        "modifiedOn": "", "at": "2026-12-06T00:00:00+00:00", "decision": "applied",
        "source": "", "externalId": "",
    }).decode()  # fmt: skip


def add(r: redis.Redis, url: str, events: str = OURS) -> endpoints.Endpoint:
    made = endpoints.add(r, url, events.split(","))
    time.sleep(0.002)  # changes after its creation, to the millisecond
    return made


def cli(system: System, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "partnersync", "endpoints", *args],
                          env=system.env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def transitions(r: redis.Redis, entities: list[str]) -> dict[str, list[str]]:
    """Per entity, the change ids written, in order (three transitions each)."""
    ids: dict[str, list[str]] = {e: [] for e in entities}
    for frm, to in zip(["", *LIFECYCLE], LIFECYCLE, strict=False):
        for e in entities:
            ids[e].append(change(r, e, frm, to))
    return ids


def per_entity(arrivals: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per entity, the change ids that arrived, each once (at least once: a redelivery
    after a crash may repeat one), in the order they first came."""
    out: dict[str, dict[str, None]] = {}
    for data in arrivals:
        out.setdefault(data["key"], {})[data["changeId"]] = None
    return {k: list(v) for k, v in out.items()}


def entities(n: int) -> list[str]:
    return [f"tradevest:transfer:{uuid.uuid4()}" for _ in range(n)]


def all_delivered(service: Endpoint, written: dict[str, list[str]]) -> bool:
    """Every written change answered 2xx at least once (a redelivery may repeat one)."""
    got = {d["changeId"] for d in service.oks()}
    return all(c in got for ids in written.values() for c in ids)


def in_order(service: Endpoint, written: dict[str, list[str]]) -> None:
    """Each entity's changes answered 2xx exactly in the order written, and no attempt of
    a later change of an entity ever before an earlier one's success."""
    assert per_entity(service.oks()) == {k: v for k, v in written.items()}
    with service.lock:
        arrivals = list(service.arrivals)
    for key, ids in written.items():
        attempts = [
            a.payload["data"]["changeId"] for a in arrivals if a.payload["data"]["key"] == key
        ]
        assert attempts == sorted(attempts, key=ids.index), (key, attempts)


@pytest.mark.worker_env(PARTNERSYNC_ENDPOINT_ATTEMPTS="1000", PARTNERSYNC_RETRY_SCHEDULE_S="0.2")
def test_an_endpoint_down_for_a_while_gets_everything_after_in_order_per_entity(
    system: System, endpoint: tuple[str, Endpoint]
) -> None:
    url, service = endpoint
    made = add(system.r, url)
    down = threading.Event()
    down.set()
    service.answer = lambda payload, nth: 503 if down.is_set() else 204
    written = transitions(system.r, entities(5))
    change(system.r, "saxo:cash-transfer:1", "", "Pending")  # not subscribed
    wait_for(lambda: len(service.arrivals) >= 15, what="attempts while it is down")
    assert not service.oks()
    down.clear()
    wait_for(lambda: all_delivered(service, written), timeout=30, what="every change delivered")
    in_order(service, written)
    assert all(d["partner"] == "tradevest" for d in service.oks())
    hook = Webhook(made.secrets[0])  # each one signed: the official library verifies it
    for a in service.arrivals:
        assert hook.verify(a.body, a.headers)["data"]["changeId"] == a.headers["webhook-id"]
    first = service.oks()[0]
    assert set(first) >= {"key", "partner", "kind", "id", "from", "to", "changeId"}
    event = msgspec.json.decode(service.arrivals[0].body, type=ChangeEvent)  # the schema
    assert event.data.changeId == service.arrivals[0].headers["webhook-id"]
    assert json.loads(service.arrivals[0].body)["type"] == f"tradevest.transfer.{first['to']}"
    box = outbound.Outbox(system.r, lease_ms=1, attempts=1)
    wait_for(lambda: box.state([made.id])[made.id].waiting == 0, what="nothing left waiting")
    assert box.state([made.id])[made.id].dead == 0


def test_a_worker_killed_mid_delivery_loses_nothing(
    system: System, endpoint: tuple[str, Endpoint]
) -> None:
    """The sender's worker is SIGKILLed while an endpoint holds a delivery's answer: after
    the claim's lease the change is delivered again, with the same webhook-id, and every
    change still arrives in order per entity."""
    url, service = endpoint
    add(system.r, url)
    let_go = threading.Event()
    held: list[str] = []

    def answer(payload: dict[str, Any], nth: int) -> Any:
        if not held:
            held.append(payload["data"]["changeId"])
            return ("hold", let_go, 200)
        return 200

    service.answer = answer
    written = transitions(system.r, entities(3))
    assert service.holding.wait(20)
    system.workers.kill()  # SIGKILL, the whole pool, mid-delivery
    let_go.set()  # its answer goes to a dead connection
    system.workers.start()  # a fresh pool
    wait_for(lambda: all_delivered(service, written), timeout=40, what="every change delivered")
    tries = service.tries(held[0])
    assert len(tries) >= 2, tries
    assert {a.headers["webhook-id"] for a in tries} == {held[0]}  # the same webhook-id
    in_order(service, written)  # nothing lost, in order per entity


def test_a_5xx_a_timeout_and_a_slow_answer_each_follow_the_retry_rule(
    system: System, endpoint: tuple[str, Endpoint]
) -> None:
    """A 503 with Retry-After is retried no sooner than it asks (the suite's schedule
    alone would retry within 0.2 s); a delivery past PARTNERSYNC_HTTP_TIMEOUT_S (3 s here)
    is a timeout, retried; a slow answer within it is one delivery. Meanwhile another
    endpoint gets its changes: a slow endpoint holds only its own slots."""
    url, service = endpoint
    slow = add(system.r, url)
    other = Endpoint()
    app = Starlette(routes=[Route("/hook", other.hook, methods=["POST"])])
    others_done = threading.Event()
    five, late, unhurried = entities(3)
    plan = {five: (503, {"retry-after": "2"}), late: ("sleep", 4.0, 200),
            unhurried: ("hold", others_done, 200)}  # fmt: skip

    def answer(payload: dict[str, Any], nth: int) -> Any:
        return plan[payload["data"]["key"]] if nth == 1 else 200

    service.answer = answer
    with serving(app, "other endpoint") as other_url:
        add(system.r, other_url + "/hook")
        written = {e: [change(system.r, e, "", LIFECYCLE[0])] for e in (five, late, unhurried)}
        wait_for(lambda: len(other.oks()) == 3, timeout=20, what="the other endpoint's changes")
        others_done.set()  # only now does the unhurried answer come
        wait_for(lambda: all_delivered(service, written), timeout=30, what="every change delivered")
    wait_for(lambda: all(a.status for a in service.arrivals), what="the timed-out answer")
    tries = {e: service.tries(ids[0]) for e, ids in written.items()}
    assert [a.status for a in tries[five]] == [503, 200]
    assert tries[five][1].at - tries[five][0].at >= 2.0  # Retry-After: 2, the floor
    assert [a.status for a in tries[late]] == [200, 200]  # the first answered too late...
    assert tries[late][1].at - tries[late][0].at < 4.0  # ...retried before it came
    assert len(tries[unhurried]) == 1  # slow, within the timeout: delivered once
    counts = {k.decode(): int(v) for k, v in system.r.hgetall(keys.OUT_COUNTS).items()}
    assert counts[f"{slow.id}:http_503"] == 1 and counts[f"{slow.id}:timeout"] == 1
    assert counts[f"{slow.id}:delivered"] == 3


@pytest.mark.worker_env(PARTNERSYNC_ENDPOINT_ATTEMPTS="3")
def test_dead_letters_hold_their_entity_back_until_replayed_or_purged(
    system: System, endpoint: tuple[str, Endpoint]
) -> None:
    url, service = endpoint
    made = add(system.r, url)
    refused, dropped, fine = entities(3)
    broken = {refused, dropped}
    service.answer = lambda p, nth: 500 if p["data"]["key"] in broken else 200
    written = transitions(system.r, [refused, dropped, fine])
    wait_for(lambda: len(outbound.Outbox(system.r, lease_ms=1, attempts=1).letters(made.id)) == 2,
             timeout=30, what="two dead letters")  # fmt: skip
    wait_for(lambda: len(service.oks()) == 3, what="the healthy entity's changes")
    assert per_entity(service.oks()) == {fine: written[fine]}  # the others held back
    assert len(service.tries(written[refused][0])) == 3  # PARTNERSYNC_ENDPOINT_ATTEMPTS
    listed = cli(system, "dead-letters", made.id, "--json")
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {x["entity"] for x in letters} == broken and all(
        x["error"] == "http_500" for x in letters
    )
    assert {x["changeId"] for x in letters} == {written[refused][0], written[dropped][0]}

    broken.clear()
    assert cli(system, "replay", made.id, refused).returncode == 0
    purged = cli(system, "purge", made.id, dropped)
    assert purged.returncode == 0, purged.stderr
    wait_for(lambda: len(service.oks()) == 8, timeout=20, what="the held changes")
    assert per_entity(service.oks()) == {
        fine: written[fine],
        refused: written[refused],
        dropped: written[dropped][1:],
    }
    again = cli(system, "replay", made.id, refused)  # gone: said, non-zero
    assert again.returncode == 1 and "no dead letter" in again.stderr
    change(system.r, fine, LIFECYCLE[-1], "T4_RETURNED")
    service.answer = lambda p, nth: 500  # queued, failing: then the endpoint is removed
    wait_for(lambda: len(service.arrivals) > 9, what="the next change tried")
    assert cli(system, "remove", made.id).returncode == 0
    wait_for(lambda: not [k for k in system.r.scan_iter(f"ps:out:*{made.id}*")],
             what="nothing of the endpoint left")  # fmt: skip
    for figures in (keys.OUT_COUNTS, keys.OUT_LAG, keys.OUT_HEALTH):
        assert not [f for f in system.r.hkeys(figures) if made.id.encode() in f]


@pytest.mark.worker_env(
    PARTNERSYNC_ENDPOINT_DISABLE_AFTER_S="1", PARTNERSYNC_ENDPOINT_ATTEMPTS="1000",
    PARTNERSYNC_RETRY_SCHEDULE_S="0.2",
)  # fmt: skip
def test_an_endpoint_failing_too_long_is_disabled_and_nothing_is_dropped(
    system: System, endpoint: tuple[str, Endpoint]
) -> None:
    url, service = endpoint
    made = add(system.r, url)
    up = threading.Event()
    service.answer = lambda p, nth: 200 if up.is_set() else 503
    keys_ = entities(2)
    written = transitions(system.r, keys_)
    wait_for(lambda: endpoints.get(system.r, made.id).disabled, what="the endpoint disabled")
    assert "failing for" in (endpoints.get(system.r, made.id).disabledReason or "")
    more = {e: change(system.r, e, LIFECYCLE[-1], "T4_RETURNED") for e in keys_}  # while off
    listed = json.loads(cli(system, "list", "--json").stdout.splitlines()[0])
    assert listed["state"] == "disabled" and listed["waiting"] == 2
    status = subprocess.run([sys.executable, "-m", "partnersync", "status"], env=system.env,
                            cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert f"endpoint  {made.id}: disabled, 2 entities waiting" in status.stdout, status.stdout
    metrics = httpx.get(system.receiver + "/metrics").text
    assert f'partnersync_endpoint_disabled{{endpoint="{made.id}"}} 1.0' in metrics
    time.sleep(sender.REFRESH_S + 0.2)  # every sender has read the endpoint since
    arrivals = len(service.arrivals)
    up.set()
    time.sleep(0.5)
    assert len(service.arrivals) == arrivals  # disabled: nothing is tried
    assert cli(system, "enable", made.id).returncode == 0
    wait_for(lambda: len(service.oks()) == 8, timeout=20, what="what queued while it was off")
    in_order(service, {e: [*written[e], more[e]] for e in keys_})


def test_a_transfer_reconciled_from_the_partner_reaches_the_endpoint_in_order(
    system: System, endpoint: tuple[str, Endpoint]
) -> None:
    """End to end: the sandbox's transfer moves through its lifecycle, its webhooks are
    reconciled into the store, and each stored transition reaches the endpoint, as the
    change stream has it, in the order the store's history has them."""
    url, service = endpoint
    add(system.r, url, "tradevest.transfer.*")
    transfer = system.create_transfer(customerProductId=system.fixtures()["balanceAccountId"],
                                      amount=3, reference="out", externalId=f"o-{uuid.uuid4()}")  # fmt: skip
    key = keys.entity_key("tradevest", "transfer", transfer)
    system.wait_status(key, "PROCESSED")
    history = store.read(system.r, [key])[0].history
    wait_for(lambda: len(per_entity(service.oks()).get(key, [])) == len(history),
             what="every stored transition delivered")  # fmt: skip
    got = [d for d in service.oks() if d["key"] == key]
    assert [(d["from"], d["to"]) for d in got] == [(t.from_, t.to) for t in history]
    assert got[-1]["externalId"] and got[-1]["partner"] == "tradevest"


def test_a_stopping_pool_hands_the_sender_over_and_loses_nothing(
    system: System, endpoint: tuple[str, Endpoint]
) -> None:
    """A sender runs on while changes keep coming (minutes, when no other job waits): the
    pool's SIGTERM makes it hand over at once instead of holding its worker past the
    pool's 30 s grace, and the next pool delivers the rest in order."""
    url, service = endpoint
    add(system.r, url)
    keys_ = entities(3)
    written: dict[str, list[str]] = {k: [] for k in keys_}
    done = threading.Event()

    def write() -> None:  # a change every 0.05 s until the pool is gone: never idle
        step = 0
        while not done.is_set():
            for k in keys_:
                written[k].append(change(system.r, k, "", f"T{chr(65 + step % 26)}_X"))
            step += 1
            time.sleep(0.05)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        wait_for(lambda: len(service.oks()) > 30, what="a sender delivering")
        assert system.workers.proc is not None
        system.workers.proc.send_signal(signal.SIGTERM)
        system.workers.proc.wait(timeout=20)  # within the 30 s grace: the sender let go
    finally:
        done.set()
        writer.join()
    system.workers.start()
    wait_for(lambda: all_delivered(service, written), timeout=40, what="every change delivered")
    in_order(service, written)
