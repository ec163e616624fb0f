"""The dirty set, leases and drain jobs, on a real Redis."""

from __future__ import annotations

import time

import redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from partnersync import inbox, keys, workqueue

E1 = "tradevest:transfer:11111111-1111-1111-1111-111111111111"
E2 = "tradevest:transfer:22222222-2222-2222-2222-222222222222"


def intake(r: redis.Redis, wq: workqueue.WorkQueue, entity: str, dedupe: str, body: bytes = b"{}"):
    script = r.register_script(workqueue.INTAKE)
    event = workqueue.Delivery("TRANSFER_NOTIFICATION", body, [entity], keys.dedupe(dedupe))
    script_keys, args = workqueue.intake_call(
        [event], dedupe_ttl=60, inbox_ttl=60, cap=wq.drainers, queue=wq.queue
    )
    ((accepted, delivery_id),), drainer = workqueue.intake_replies(
        script(keys=script_keys, args=args)
    )
    if drainer == b"notpl":  # first use on this Redis
        workqueue.install_template(r, wq.queue)
        wq.kick()
    return accepted, delivery_id


def make(r: redis.Redis, drainers: int = 2, lease_ms: int = 300) -> workqueue.WorkQueue:
    return workqueue.WorkQueue(r, queue="q-test", drainers=drainers, lease_ms=lease_ms)


def test_intake_archives_dedupes_and_coalesces(r: redis.Redis) -> None:
    wq = make(r)
    assert intake(r, wq, E1, "a")[0]
    assert intake(r, wq, E1, "b")[0]
    first_id = r.get(keys.dedupe("a")).decode()
    accepted, original = intake(r, wq, E1, "a")
    assert not accepted and original == first_id
    # two distinct events, one entity due: one fetch will serve both
    assert r.zcard(keys.DIRTY) == 1
    assert r.llen(keys.events(E1)) == 2
    block = inbox.block_of(original)
    assert block is not None and r.ttl(keys.inbox_block(block[0])) > 0
    assert inbox.read(r, [original])[0].type == "TRANSFER_NOTIFICATION"


def test_intake_enqueues_a_real_rq_job_up_to_the_cap(r: redis.Redis) -> None:
    wq = make(r, drainers=2)
    for i in range(5):
        intake(r, wq, f"{E1[:-1]}{i}", f"d{i}")
    queue = Queue("q-test", connection=r, serializer=JSONSerializer)
    assert queue.count == 2  # capped: more drain jobs would only compete for the same work
    job = Job.fetch(queue.job_ids[0], connection=r, serializer=JSONSerializer)
    assert job.func_name == workqueue.DRAIN_FUNC
    assert job.get_status() == "queued" and job.origin == "q-test"
    assert job.enqueued_at is not None and job.created_at is not None


def test_claim_leases_and_complete_trims_only_processed_events(r: redis.Redis) -> None:
    wq = make(r)
    intake(r, wq, E1, "a")
    claimed = wq.claim("job-1", 10)
    assert [e for e, _ in claimed] == [E1] and len(claimed[0][1]) == 1
    assert wq.claim("job-2", 10) == []  # leased: nobody else may take it
    intake(r, wq, E1, "b")  # arrives while job-1 works on E1
    pipe = r.pipeline()
    wq.complete(pipe, E1, "job-1", 1, "ok")
    pipe.execute()
    # the event that arrived meanwhile is still there and due
    assert r.lrange(keys.events(E1), 0, -1) == [r.get(keys.dedupe("b"))]
    claimed = wq.claim("job-2", 10)
    assert claimed and claimed[0][0] == E1


def test_a_crashed_claim_becomes_due_again_after_the_lease(r: redis.Redis) -> None:
    wq = make(r, lease_ms=200)
    intake(r, wq, E1, "a")
    assert wq.claim("dead-job", 10)  # ... and the worker dies without completing
    assert wq.claim("job-2", 10) == []
    time.sleep(0.25)
    claimed = wq.claim("job-2", 10)
    assert claimed and claimed[0][1][0] == r.get(keys.dedupe("a")).decode()  # nothing lost


def test_retry_keeps_events_and_defers(r: redis.Redis) -> None:
    wq = make(r)
    intake(r, wq, E1, "a")
    wq.claim("job-1", 10)
    pipe = r.pipeline()
    wq.complete(pipe, E1, "job-1", 0, "retry", 60_000)  # due in a minute, by Redis's clock
    pipe.execute()
    assert r.llen(keys.events(E1)) == 1
    assert r.get(keys.attempts(E1)) == b"1"
    assert wq.claim("job-2", 10) == []  # not due yet
    intake(r, wq, E1, "b")  # a new event makes it due now
    assert wq.claim("job-2", 10)


def test_empty_claim_deregisters_the_drainer(r: redis.Redis) -> None:
    wq = make(r, drainers=1)
    intake(r, wq, E1, "a")
    (drainer,) = [m.decode() for m in r.zrange(keys.DRAINERS, 0, -1)]
    assert wq.claim(drainer, 10)
    pipe = r.pipeline()
    wq.complete(pipe, E1, drainer, 1, "ok")
    pipe.execute()
    assert wq.claim(drainer, 10) == []
    assert r.zcard(keys.DRAINERS) == 0
    assert intake(r, wq, E2, "b")[0]
    assert r.zcard(keys.DRAINERS) == 1  # a new event starts a new drain job


def test_kick_starts_a_drainer_only_when_work_is_due(r: redis.Redis) -> None:
    wq = make(r)
    assert wq.kick() is None
    r.zadd(keys.DIRTY, {E1: workqueue.now_ms()})
    assert wq.kick() is not None


def test_a_burst_after_a_reconcile_waits_out_the_cooldown(r: redis.Redis) -> None:
    wq = workqueue.WorkQueue(r, queue="q-test", drainers=2, lease_ms=300, cooldown_ms=400)
    intake(r, wq, E1, "a")
    assert wq.claim("job-1", 10)  # a quiet entity: due at once
    pipe = r.pipeline()
    wq.complete(pipe, E1, "job-1", 1, "ok")
    pipe.execute()
    for n in range(5):  # the burst that follows
        intake(r, wq, E1, f"b{n}")
    assert wq.claim("job-2", 10) == []  # coalescing: not yet
    time.sleep(0.45)
    ((entity, events),) = wq.claim("job-2", 10)
    assert entity == E1 and len(events) == 5  # one fetch for the whole burst


def test_a_worker_that_lost_its_lease_cannot_write(r: redis.Redis) -> None:
    wq = make(r, lease_ms=200)
    intake(r, wq, E1, "a")
    assert wq.claim("slow-job", 10)
    journal = ("ps:test:journal", "x1")
    r.set("ps:test:older", b"v0")
    assert wq.fenced_set(E1, "slow-job", journal, b"v1", "ps:test:older") == 1  # holds the lease
    assert not r.exists("ps:test:older")
    time.sleep(0.25)  # its request outlived the lease...
    assert wq.claim("next-job", 10)  # ...and a successor took the entity over
    assert wq.fenced_set(E1, "next-job", journal, b"v2", "ps:test:older") == 1
    assert wq.fenced_set(E1, "slow-job", journal, b"stale", "ps:test:older") == 0
    assert r.hget(*journal) == b"v2"
