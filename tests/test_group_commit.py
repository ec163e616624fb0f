"""The receiver's group commit: under load, while a batch is in Redis, the requests that
arrive wait and go out together when its reply frees the slot (fewer, larger script calls);
under light load a request goes out at once instead of waiting a round trip for a batch
of one. Every request is still stored and answered."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio as aioredis

from cli.redisserver import RedisServer
from partnersync import inbox, rqbridge
from partnersync.resp import PipelinedConnection
from receiver.intake import Intake
from tests.conftest import base_env, settings_for

Accept = Callable[[int], "asyncio.Task[tuple[bool, str]]"]


def run(
    redis_server: RedisServer,
    r: redis.Redis,
    scenario: Callable[[Accept, list[int], asyncio.Event], Awaitable[list[tuple[bool, str]]]],
) -> tuple[list[int], list[tuple[bool, str]]]:
    """Runs `scenario(accept, sent, gate)` on an Intake whose first script call is held
    until `gate` is set (a slow round trip); `sent`: events per script call, in the order
    they were sent."""
    sent: list[int] = []
    gate = asyncio.Event()

    async def main() -> list[tuple[bool, str]]:
        pipelined = PipelinedConnection(redis_server.url)
        connection = aioredis.Redis.from_url(redis_server.url)
        real = pipelined.evalsha

        async def held(script: str, *args: Any, **kw: Any) -> Any:
            sent.append(int(args[6]))  # intake.lua's ARGV[7]: n_events
            if len(sent) == 1:
                await gate.wait()
            return await real(script, *args, **kw)

        pipelined.evalsha = held  # type: ignore[method-assign]
        settings = settings_for(base_env(redis_server.url))
        rqbridge.install_template(r, settings.queue)  # no template install behind the replies
        intake = Intake(pipelined, connection, settings, eager_below=4)

        def accept(n: int) -> asyncio.Task[tuple[bool, str]]:
            body = b'{"n":%d}' % n
            return asyncio.ensure_future(intake.accept(
                event_type="TRANSFER_NOTIFICATION", body=body, entities=[f"e{n}"], dedupe=f"d{n}"
            ))  # fmt: skip

        try:
            return await scenario(accept, sent, gate)
        finally:
            await pipelined.aclose()
            await connection.aclose()

    return sent, asyncio.run(main())


async def first_call(sent: list[int]) -> None:
    """Until the Intake has made its first script call."""
    while not sent:
        await asyncio.sleep(0)


async def iterations(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def stored(r: redis.Redis, replies: list[tuple[bool, str]], n: int) -> None:
    assert all(accepted for accepted, _ in replies)
    ids = [delivery_id for _, delivery_id in replies]
    assert len(set(ids)) == n and inbox.count(r) == n
    assert [rec.body for rec in inbox.read(r, ids)] == [b'{"n":%d}' % i for i in range(n)]


def test_events_that_arrive_while_a_batch_is_in_flight_go_out_as_one_batch(
    redis_server: RedisServer, r: redis.Redis
) -> None:
    async def scenario(accept: Accept, sent: list[int], gate: asyncio.Event) -> Any:
        tasks = [accept(n) for n in range(4)]  # one moment's requests: 4 in Redis (load)
        await first_call(sent)
        for n in range(4, 9):  # one a loop iteration: without the limit, 5 more calls
            tasks.append(accept(n))
            await iterations(3)
        assert sent == [4] and not any(t.done() for t in tasks)
        gate.set()
        return await asyncio.gather(*tasks)

    sent, replies = run(redis_server, r, scenario)
    assert sent == [4, 5]
    stored(r, replies, 9)


def test_under_light_load_a_request_does_not_wait_for_the_batch_in_flight(
    redis_server: RedisServer, r: redis.Redis
) -> None:
    """One event in Redis: the next goes out at once and is answered while the first is
    still held (it used to wait for the first reply: a whole extra round trip, an fsync)."""

    async def scenario(accept: Accept, sent: list[int], gate: asyncio.Event) -> Any:
        first = accept(0)
        await first_call(sent)
        second = accept(1)
        await asyncio.wait_for(asyncio.shield(second), 10)
        assert sent == [1, 1] and not first.done()
        gate.set()
        return [await first, await second]

    sent, replies = run(redis_server, r, scenario)
    assert sent == [1, 1]
    stored(r, replies, 2)


def test_a_cancelled_request_does_not_cancel_the_others_of_its_batch(
    redis_server: RedisServer, r: redis.Redis
) -> None:
    """Two requests share a batch; one request's task is cancelled (its server shutting the
    handler down) while the batch is in Redis. The other is still answered from the reply,
    and the batch's sender does not fail setting a result nobody can take any more."""
    errors: list[dict[str, Any]] = []

    async def scenario(accept: Accept, sent: list[int], gate: asyncio.Event) -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
        gone, kept = accept(0), accept(1)
        await first_call(sent)
        assert sent == [2]
        gone.cancel()
        await iterations(3)
        gate.set()
        reply = await asyncio.wait_for(kept, 10)
        await iterations(10)  # the sender task ends (and is collected) behind the reply
        assert gone.cancelled()
        return [reply]

    sent, replies = run(redis_server, r, scenario)
    assert sent == [2] and errors == []
    assert replies[0][0] is True
    # the cancelled request's event went to Redis with the batch: stored, so the sender's
    # retry of it is a duplicate, not a second booking
    assert inbox.count(r) == 2
