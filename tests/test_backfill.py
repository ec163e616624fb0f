"""`partnersync backfill` imports what a partner held before partnersync was registered
(#37 item 6): through its list endpoints into the reconcile path, resumable after an
interruption, never re-listing what a finished run covered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

import pytest
import redis

from partnersync import backfill, keys, store, workqueue
from tests.conftest import System


def wq(r: redis.Redis) -> workqueue.WorkQueue:
    return workqueue.WorkQueue(r, queue="partnersync", drainers=1, lease_ms=3000)


@pytest.mark.e2e
def test_the_sandboxs_fixtures_are_mirrored_by_a_backfill(system: System) -> None:
    fx = system.fixtures()
    wanted = [f"tradevest:natural-person:{fx['naturalPersonId']}",
              f"tradevest:customer:{fx['customerId']}",
              *(f"tradevest:customer-product:{fx[p]}"
                for p in ("balanceAccountId", "depositoryAccountId", "walletId"))]  # fmt: skip
    assert store.load(system.r, wanted) == [None] * 5  # created before registration, never notified
    done = system.cli("backfill", "--partner", "tradevest", "--kind", "natural-person",
                      "--kind", "customer", "--kind", "customer-product", "--wait", "60", "--json")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    shown = json.loads(done.stdout)
    assert shown["stillDue"] == 0
    tallies = {row["kind"]: row for row in shown["kinds"]}
    assert tallies["customer-product"]["listed"] >= 3 and tallies["customer"]["new"] >= 1
    records = store.load(system.r, wanted)
    assert all(r is not None for r in records), wanted
    assert {r.status for r in records} == {"ACTIVE"}
    assert not system.r.exists(keys.backfill("tradevest"))  # a finished run keeps nothing
    again = json.loads(system.cli("backfill", "--partner", "tradevest", "--kind", "customer",
                                  "--json").stdout)  # fmt: skip
    assert again["kinds"][0]["new"] == 0  # all stored now: nothing marked due again

    unknown = system.cli("backfill", "--partner", "tradevest", "--kind", "nosuch")
    assert unknown.returncode == 2 and "nosuch" in unknown.stderr
    nobody = system.cli("backfill", "--partner", "nosuch")
    assert nobody.returncode == 2 and "nosuch" in nobody.stderr


class Interrupted(Exception):
    pass


def listing(pages: list[list[str]], fail_after: int | None, calls: list[str | None]):
    """A listing over fixed pages (tokens "1", "2", …) that fails after `fail_after` pages."""

    async def list_pages(
        client: object, parents: Sequence[str], token: str | None
    ) -> AsyncIterator[tuple[list[str], str | None]]:
        calls.append(token)
        start = int(token or 0)
        for n, ids in enumerate(pages[start:], start=start + 1):
            if fail_after is not None and n > fail_after:
                raise Interrupted
            yield ids, (str(n) if n < len(pages) else None)

    return list_pages


def test_an_interrupted_backfill_resumes_where_it_stopped(r: redis.Redis) -> None:
    pages = [["a", "b"], ["c"], ["d", "e"]]
    calls: list[str | None] = []
    broken = backfill.Listing("customer", "customers", listing(pages, 2, calls))
    with pytest.raises(Interrupted):
        asyncio.run(backfill.backfill(r, wq(r), "tradevest", None, [broken]))
    assert r.hget(keys.backfill("tradevest"), "customers") == b"2"
    assert (
        r.ttl(keys.backfill("tradevest")) > 0
        and r.ttl(keys.backfill_found("tradevest", "customer")) > 0
    )
    whole = backfill.Listing("customer", "customers", listing(pages, None, calls))
    run = asyncio.run(backfill.backfill(r, wq(r), "tradevest", None, [whole]))
    assert calls == [None, "2"]  # the second run starts after the pages already taken
    tally = run.tallies["customer"]
    assert (tally.listed, tally.pages, tally.resumed) == (2, 1, True)
    due = {m.decode() for m in r.zrange(keys.DIRTY, 0, -1)}
    assert due == {f"tradevest:customer:{i}" for i in "abcde"}  # every id, once
    assert not r.exists(keys.backfill("tradevest"), keys.backfill_found("tradevest", "customer"))
