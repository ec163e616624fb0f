"""Accept events durably, in one Redis round trip shared by the requests of a moment.

Group commit: the events of requests whose handlers ran in the same event-loop iteration
go to Redis in one call of the intake script (atomic per batch); each request is answered
only after that call returned, so 2xx still means stored. Under load a round trip is
shared by many requests; alone, a request waits for nobody. The call goes over a lean
pipelined connection (partnersync.resp).

A new batch goes out at once while the batches in Redis hold fewer than `eager_below`
events (light load: waiting for a reply would add most of a round trip — an fsync — to its
requests' latency; an idle receiver always sends at once). Otherwise it waits for the
first reply and gathers what arrives meanwhile: Redis pays per call (the socket read and
reply, the script's per-batch commands), so batches that grow with the load cost it less
per event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis

from partnersync import keys, rqbridge, workqueue
from partnersync.config import Settings
from partnersync.replication import NotReplicated  # not acknowledged; the redelivery is a duplicate
from partnersync.resp import PipelinedConnection

Waiter = asyncio.Future[tuple[bool, str]]  # one request's (accepted, delivery id)


class Intake:
    def __init__(
        self,
        pipelined: PipelinedConnection,
        connection: aioredis.Redis,
        settings: Settings,
        *,
        eager_below: int = 4,
    ):
        self.pipelined = pipelined
        self.connection = connection  # redis-py, for the rare template install
        self.settings = settings
        self.kick = connection.register_script(workqueue.KICK)
        self._pending: list[workqueue.Delivery] = []  # the batch forming: its events and
        self._waiters: list[Waiter] = []  # their requests
        self._sends: set[asyncio.Task[None]] = set()
        self.eager_below = max(1, eager_below)  # 1: one batch in Redis at a time
        self._events_in_flight = 0  # events of the batches whose reply has not come back
        self._due = False  # a flush is scheduled for the next loop iteration

    async def accept(
        self,
        *,
        event_type: str,
        body: bytes,
        entities: Sequence[str],
        dedupe: str | None,
        label: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> tuple[bool, str]:
        """Returns (accepted, delivery id); accepted is False for a duplicate. `label`
        names the event in the counters (default: its type); `headers` are kept with it."""
        event = workqueue.Delivery(
            event_type, body, entities, keys.dedupe(dedupe) if dedupe else "", label, headers
        )
        loop = asyncio.get_running_loop()
        # one future per request, not one per batch: cancelling a request's task cancels
        # the future it awaits, which must not take the batch's other requests with it
        waiter: Waiter = loop.create_future()
        # the first of this moment: its batch goes out next iteration under light load,
        # else when a reply frees a slot
        if not self._pending and self._events_in_flight < self.eager_below:
            self._due = True
            loop.call_soon(self._flush)
        self._pending.append(event)
        self._waiters.append(waiter)
        return await waiter

    def _flush(self) -> None:
        self._due = False
        events, waiters = self._pending, self._waiters
        self._pending, self._waiters = [], []
        self._events_in_flight += len(events)
        task = asyncio.get_running_loop().create_task(self._send(events, waiters))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self, events: list[workqueue.Delivery], waiters: list[Waiter]) -> None:
        s = self.settings
        script_keys, args = workqueue.intake_call(
            events, dedupe_ttl=s.dedupe_ttl, inbox_ttl=s.inbox_ttl, cap=s.drainers, queue=s.queue
        )
        # WAIT right behind the script, on its connection: it counts that connection's writes
        wait = (b"WAIT", s.min_replicas, s.replica_timeout_ms) if s.min_replicas else ()
        try:
            reply = await self.pipelined.evalsha(
                workqueue.INTAKE, *args, keys=script_keys, then=wait
            )
        except BaseException as exc:  # Redis unreachable: every request of the batch gets 503
            _refuse(waiters, exc)
            return
        finally:
            self._events_in_flight -= len(events)
            if self._pending and not self._due:  # it waited for this slot
                self._flush()
        replicas = s.min_replicas
        if wait:
            reply, replicas = reply
        replies, drainer = workqueue.intake_replies(reply)
        if replicas < s.min_replicas:
            _refuse(waiters, NotReplicated(f"{replicas} of {s.min_replicas} replicas"))
        else:
            for waiter, answer in zip(waiters, replies, strict=True):
                if not waiter.done():  # a cancelled request is no longer waiting
                    waiter.set_result(answer)
        if drainer == b"notpl":
            await self._install_template()

    async def _install_template(self) -> None:
        s = self.settings
        pipe = self.connection.pipeline(transaction=True)
        pipe.delete(keys.rq_template(s.queue))
        pipe.rpush(keys.rq_template(s.queue), *rqbridge.job_template(s.queue))
        await pipe.execute()
        await self.kick(
            keys=rqbridge.drainer_keys(s.queue),
            args=[rqbridge.rq_now(workqueue.now_ms()), s.drainers, 60_000, 0],
        )


def _refuse(waiters: list[Waiter], exc: BaseException) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_exception(exc)
