"""The inbox's layouts (partnersync/inbox.py), on a real Redis: intake blocks, the first
layout's one-record hashes, and a replay's rewrite."""

from __future__ import annotations

import redis

from partnersync import inbox, keys, workqueue


def accept(r: redis.Redis, events: list[workqueue.Delivery]) -> list[tuple[bool, str]]:
    script = r.register_script(workqueue.INTAKE)
    script_keys, args = workqueue.intake_call(
        events, dedupe_ttl=60, inbox_ttl=60, cap=0, queue="q-inbox"
    )
    replies, _ = workqueue.intake_replies(script(keys=script_keys, args=args))
    return replies


def event(n: int, entities: int = 1) -> workqueue.Delivery:
    named = [f"tradevest:transfer:{n}-{k}" for k in range(entities)]
    return workqueue.Delivery("TRANSFER_NOTIFICATION", b'{"n":%d}' % n, named, keys.dedupe(f"d{n}"))


def test_a_batch_is_one_value_and_each_delivery_reads_back_as_sent(r: redis.Redis) -> None:
    replies = accept(r, [event(1), event(2, entities=3), event(1)])  # the third: a duplicate
    assert [a for a, _ in replies] == [True, True, False] and replies[2][1] == replies[0][1]
    ids = [d for _, d in replies[:2]]
    assert len(list(r.scan_iter(keys.inbox_block("*")))) == 1
    assert not list(r.scan_iter(keys.inbox("*")))
    first, second = inbox.read(r, ids)
    assert (first.type, first.body, first.entities) == (
        "TRANSFER_NOTIFICATION", b'{"n":1}', ("tradevest:transfer:1-0",),
    )  # fmt: skip
    assert second.entities == tuple(f"tradevest:transfer:2-{k}" for k in range(3))
    assert first.received_ms == int(ids[0].split("-")[0])
    assert inbox.count(r) == 2 and sorted(i for i, _ in inbox.scan(r)) == sorted(ids)
    assert inbox.read(r, ["1795000000000-7", "not-an-id"]) == [inbox.MISSING, inbox.MISSING]


def test_a_batch_larger_than_a_block_spans_blocks_in_order(r: redis.Redis) -> None:
    n = inbox.BLOCK + 5
    replies = accept(r, [event(i) for i in range(n)])
    ids = [d for _, d in replies]
    seqs = [int(d.split("-")[1]) for d in ids]
    assert seqs == sorted(seqs) and len(set(seqs)) == n
    assert len(list(r.scan_iter(keys.inbox_block("*")))) == 2
    assert [x.body for x in inbox.read(r, ids)] == [b'{"n":%d}' % i for i in range(n)]


def test_a_replays_rewrite_wins_over_its_block(r: redis.Redis) -> None:
    ((_, delivery),) = accept(r, [event(3)])
    pipe = r.pipeline()
    rewritten = inbox.Record("TRANSFER_NOTIFICATION", b'{"n":33}', 1, ("tradevest:transfer:3-0",))
    inbox.write(pipe, delivery, rewritten, 60)
    pipe.execute()
    assert inbox.read(r, [delivery])[0] == rewritten
