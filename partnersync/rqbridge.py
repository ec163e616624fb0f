"""The one module that knows RQ's job record and key names.

The work queue's Lua scripts enqueue drain jobs inside Redis (atomically with the event
that needs one), so they write RQ's own job hash. That hash is built here by RQ's Job
(no Redis call), kept in Redis as a template, and the key names are RQ's own class
attributes, so a different RQ_KEY_PREFIX or RQ version cannot leave the scripts writing
where RQ does not read. RQ is pinned to the major version the suite runs (pyproject).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from partnersync import keys

DRAIN_FUNC = "jobs.drain.drain"
DELIVER_FUNC = "jobs.deliver.deliver"  # the outbound sender (partnersync/sender.py)
NOW = "\x00now"  # placeholder for RQ's created_at / enqueued_at in the template (drainer.lua)

QUEUES = Queue.redis_queues_keys  # RQ's set of queues
JOB_PREFIX = Job.redis_job_namespace_prefix  # RQ's job hash: JOB_PREFIX + job id


def queue_key(queue: str) -> str:
    return Queue.redis_queue_namespace_prefix + queue


def started_key(queue: str) -> str:
    return StartedJobRegistry.key_template.format(queue)


def failed_key(queue: str) -> str:
    return FailedJobRegistry.key_template.format(queue)


def drainer_keys(queue: str) -> list[str]:
    """KEYS[1..7] of the scripts that may enqueue a drain job (lua/drainer.lua)."""
    return [
        keys.DIRTY,
        keys.DRAINERS,
        keys.SEQ,
        keys.rq_template(queue),
        QUEUES,
        queue_key(queue),
        JOB_PREFIX,
    ]


def job_template(
    queue: str, *, timeout: int = 300, result_ttl: int = 60, failure_ttl: int = 86400
) -> list[Any]:
    """The fields of a queued drain job exactly as RQ itself writes them, as HSET pairs."""
    job = Job.create(
        DRAIN_FUNC,
        connection=redis.Redis(),  # never used: to_dict() does no I/O
        serializer=JSONSerializer,
        id="template",
        timeout=timeout,
        result_ttl=result_ttl,
        failure_ttl=failure_ttl,
        description="partnersync: reconcile due entities",
    )
    job.origin = queue
    job.enqueued_at = datetime.now(UTC)  # replaced by the enqueue time inside Redis
    job._status = JobStatus.QUEUED
    flat: list[Any] = []
    for name, value in job.to_dict().items():
        if name in ("created_at", "enqueued_at"):
            value = NOW
        elif isinstance(value, JobStatus):
            value = value.value
        flat.extend((name, value))
    return flat


def install_template(connection: redis.Redis, queue: str) -> None:
    """Keep the drain-job template in Redis, where the Lua scripts read it."""
    pipe = connection.pipeline(transaction=True)
    pipe.delete(keys.rq_template(queue))
    pipe.rpush(keys.rq_template(queue), *job_template(queue))
    pipe.execute()


def rq_now(ms: int) -> str:
    """RQ's timestamp format (rq.utils.utcformat)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def enqueue(connection: redis.Redis, queue: str, func: str, description: str) -> None:
    """Enqueue a job the way RQ does (for jobs not enqueued inside a script)."""
    Queue(queue, connection=connection, serializer=JSONSerializer).enqueue(
        func, job_timeout=300, result_ttl=60, failure_ttl=86400, description=description
    )
