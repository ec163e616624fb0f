"""Outbound webhooks (#40): the mirror's changes delivered to the team's endpoints by the
worker pool, signed (verified with the official standardwebhooks library), at least once,
in order per entity, retried on the schedule, dead-lettered per endpoint, replayable.

Every test runs the real worker pool and clock against the suite's Redis; the endpoints are
Starlette apps served by uvicorn in this process (`Endpoint`), told what to answer."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
import redis
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from partnersync import endpoints, keys, outbound
from tests.conftest import ROOT, System, serving, wait_for

Answer = Callable[[dict[str, Any], int], Any]  # (payload, nth arrival of its id) -> answer


class Arrival(NamedTuple):
    payload: dict[str, Any]
    body: bytes
    headers: dict[str, str]
    status: int  # what it was answered
    at: float  # time.monotonic() when it came


class Endpoint:
    """A team's service: records every arrival and answers what `answer` says for it: a
    status, (status, headers), or ("sleep", seconds, status)."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.seen: dict[str, int] = {}
        self.answer: Answer = lambda payload, nth: 200
        self.lock = threading.Lock()

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        payload, headers, at = json.loads(body), dict(request.headers), time.monotonic()
        with self.lock:
            nth = self.seen[headers["webhook-id"]] = self.seen.get(headers["webhook-id"], 0) + 1
        answer = self.answer(payload, nth)
        if isinstance(answer, tuple) and answer[0] == "sleep":
            await asyncio.sleep(answer[1])
            answer = answer[2]
        status, extra = answer if isinstance(answer, tuple) else (answer, {})
        with self.lock:
            self.arrivals.append(Arrival(payload, body, headers, status, at))
        return Response(b"" if status == 204 else b"{}", status, headers=extra,
                        media_type="application/json")  # fmt: skip

    def oks(self) -> list[dict[str, Any]]:
        """The data of each arrival answered 2xx, in order."""
        with self.lock:
            return [a.payload["data"] for a in self.arrivals if a.status < 300]

    def tries(self, change_id: str) -> list[Arrival]:
        with self.lock:
            return [a for a in self.arrivals if a.headers["webhook-id"] == change_id]


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Endpoint]]:
    service = Endpoint()
    app = Starlette(routes=[Route("/hook", service.hook, methods=["POST"])])
    with serving(app, "endpoint") as url:
        yield url + "/hook", service


def change(r: redis.Redis, entity: str, frm: str, to: str) -> str:
    """A stored transition, as store.write appends it to the change stream."""
    partner, kind, ident = entity.split(":", 2)
    return r.xadd(keys.CHANGES, {
        "key": entity, "partner": partner, "kind": kind, "id": ident, "from": frm, "to": to,
        "modifiedOn": "", "at": "2026-12-06T00:00:00+00:00", "decision": "applied",
        "source": "", "externalId": "",
    }).decode()  # fmt: skip


def add(r: redis.Redis, url: str, events: str = "tradevest.transfer.*") -> endpoints.Endpoint:
    made = endpoints.add(r, url, events.split(","))
    time.sleep(0.002)  # changes after its creation, to the millisecond
    return made


def cli(system: System, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "partnersync", "endpoints", *args],
                          env=system.env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


LIFECYCLE = ["RECEIVED", "PENDING", "PROCESSED"]


def transitions(r: redis.Redis, entities: list[str]) -> dict[str, list[str]]:
    """Per entity, the change ids written, in order (three transitions each)."""
    ids: dict[str, list[str]] = {e: [] for e in entities}
    for frm, to in zip(["", *LIFECYCLE], LIFECYCLE, strict=False):
        for e in entities:
            ids[e].append(change(r, e, frm, to))
    return ids


def per_entity(arrivals: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for data in arrivals:
        out.setdefault(data["key"], []).append(data["changeId"])
    return out


def entities(n: int) -> list[str]:
    return [f"tradevest:transfer:{uuid.uuid4()}" for _ in range(n)]


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
    wait_for(lambda: len(service.oks()) >= 15, timeout=30, what="every change delivered")
    in_order(service, written)
    assert all(d["partner"] == "tradevest" for d in service.oks())
    hook = Webhook(made.secrets[0])  # each one signed: the official library verifies it
    for a in service.arrivals:
        assert hook.verify(a.body, a.headers)["data"]["changeId"] == a.headers["webhook-id"]
    first = service.oks()[0]
    assert set(first) >= {"key", "partner", "kind", "id", "from", "to", "changeId"}
    assert json.loads(service.arrivals[0].body)["type"] == f"tradevest.transfer.{first['to']}"
    state = outbound.Outbox(system.r, lease_ms=1, attempts=1).state([made.id])[made.id]
    assert state.waiting == 0 and state.dead == 0
