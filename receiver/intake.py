"""Accept events durably, in one Redis round trip shared by the requests of a moment.

Group commit: the events of requests whose handlers ran in the same event-loop iteration
go to Redis in one call of the intake script (atomic per batch); each request is answered
only after that call returned, so 2xx still means stored. Under load a round trip is
shared by many requests; alone, a request waits for nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis

from partnersync import keys, workqueue
from partnersync.config import Settings


class Intake:
    def __init__(self, connection: aioredis.Redis, settings: Settings):
        self.connection = connection
        self.settings = settings
        self.intake = connection.register_script(workqueue.INTAKE)
        self.kick = connection.register_script(workqueue.KICK)
        self._pending: list[tuple[workqueue.Event, asyncio.Future[tuple[bool, str]]]] = []
        self._scheduled = False
        self._flushes: set[asyncio.Task[None]] = set()

    async def accept(
        self, *, event_type: str, body: bytes, entities: Sequence[str], dedupe: str | None
    ) -> tuple[bool, str]:
        """Returns (accepted, delivery id); accepted is False for a duplicate."""
        event = workqueue.Event(event_type, body, entities, keys.dedupe(dedupe) if dedupe else "")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[bool, str]] = loop.create_future()
        self._pending.append((event, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending, self._scheduled = self._pending, [], False
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _send(
        self, batch: list[tuple[workqueue.Event, asyncio.Future[tuple[bool, str]]]]
    ) -> None:
        s = self.settings
        args = workqueue.intake_args(
            [event for event, _ in batch],
            dedupe_ttl=s.dedupe_ttl,
            inbox_ttl=s.inbox_ttl,
            cap=s.drainers,
            queue=s.queue,
        )
        try:
            results, drainer = workqueue.intake_replies(await self.intake(args=args))
        except BaseException as exc:  # Redis unreachable: every request of the batch gets 503
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        if drainer == b"notpl":
            await self._install_template()

    async def _install_template(self) -> None:
        s = self.settings
        pipe = self.connection.pipeline(transaction=True)
        pipe.delete(keys.rq_template(s.queue))
        pipe.rpush(keys.rq_template(s.queue), *workqueue.job_template(s.queue))
        await pipe.execute()
        ms = workqueue.now_ms()
        await self.kick(args=[ms, workqueue.rq_now(ms), s.drainers, 60_000, s.queue, 0])
