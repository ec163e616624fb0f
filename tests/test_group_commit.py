"""The receiver's group commit: while a batch is in Redis, the requests that arrive wait and
go out together when its reply frees the slot (fewer, larger script calls under load), and
every one of them is still stored and answered."""

from __future__ import annotations

import asyncio
from typing import Any

import redis
import redis.asyncio as aioredis

from cli.redisserver import RedisServer
from partnersync import inbox, rqbridge
from partnersync.resp import PipelinedConnection
from receiver.intake import Intake
from tests.conftest import base_env, settings_for


def test_events_that_arrive_while_a_batch_is_in_flight_go_out_as_one_batch(
    redis_server: RedisServer, r: redis.Redis
) -> None:
    sent: list[int] = []  # events per script call, in the order they were sent
    gate = asyncio.Event()  # holds the first call's reply back: a slow round trip

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
        intake = Intake(pipelined, connection, settings, max_in_flight=1)

        def accept(n: int) -> asyncio.Task[tuple[bool, str]]:
            body = b'{"n":%d}' % n
            return asyncio.ensure_future(intake.accept(
                event_type="TRANSFER_NOTIFICATION", body=body, entities=[f"e{n}"], dedupe=f"d{n}"
            ))  # fmt: skip

        try:
            tasks = [accept(0)]
            while not sent:
                await asyncio.sleep(0)
            for n in range(1, 6):  # one a loop iteration: without the limit, 5 more calls
                tasks.append(accept(n))
                for _ in range(3):
                    await asyncio.sleep(0)
            assert sent == [1] and not any(t.done() for t in tasks)
            gate.set()
            return await asyncio.gather(*tasks)
        finally:
            await pipelined.aclose()
            await connection.aclose()

    replies = asyncio.run(main())
    assert sent == [1, 5]
    assert all(accepted for accepted, _ in replies)
    ids = [delivery_id for _, delivery_id in replies]
    assert len(set(ids)) == 6 and inbox.count(r) == 6
    assert [rec.body for rec in inbox.read(r, ids)] == [b'{"n":%d}' % n for n in range(6)]
