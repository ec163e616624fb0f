"""Accept one event in one Redis round trip: dedupe, archive, mark due, start a drain job."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from partnersync import keys, workqueue
from partnersync.config import Settings


class Intake:
    def __init__(self, connection: aioredis.Redis, settings: Settings):
        self.connection = connection
        self.settings = settings
        self.template = workqueue.job_template(settings.queue)
        self._script = connection.register_script(workqueue.INTAKE)

    async def accept(
        self, *, event_type: str, body: bytes, entities: Sequence[str], dedupe: str | None
    ) -> tuple[bool, str]:
        """Returns (accepted, delivery id); accepted is False for a duplicate."""
        ms = workqueue.now_ms()
        did = workqueue.delivery_id(ms)
        s = self.settings
        args = workqueue.intake_args(
            dedupe_key=keys.dedupe(dedupe) if dedupe else "",
            delivery_id=did,
            event_type=event_type,
            body=body,
            entities=entities,
            dedupe_ttl=s.dedupe_ttl,
            inbox_ttl=s.inbox_ttl,
            cap=s.drainers,
            queue=s.queue,
            template=self.template,
            now=ms,
        )
        accepted, original = await self._script(args=args)
        return bool(accepted), original.decode() if isinstance(original, bytes) else original
