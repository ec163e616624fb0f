"""Listings and lookups read a page, not the journal (#38): counted in keys Redis looked
up (INFO stats keyspace_hits + keyspace_misses, after CONFIG RESETSTAT), never timed."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest
import redis

from cli.redisserver import RedisServer
from partners.saxo.cli.signups import _signup
from partnersync import commands, config, keys, partner, store, workqueue
from schemas.commands import CommandRecord, CommandState
from schemas.tradevest.commands import TransferData
from tests.conftest import ROOT, base_env

JOURNAL = 400


def keys_read(r: redis.Redis) -> int:
    stats = r.info("stats")
    return int(stats["keyspace_hits"]) + int(stats["keyspace_misses"])


@pytest.fixture
def journal(redis_server: RedisServer, r: redis.Redis) -> list[str]:
    """`JOURNAL` transfer commands submitted (no worker runs: they stay PENDING_SEND)."""
    settings = config.load(base_env(redis_server.url), state_fallback=False)
    wq = workqueue.WorkQueue.from_settings(r, settings)
    product = uuid.uuid4()
    return [
        commands.submit(r, wq, "transfer", TransferData(customerProductId=product,
                        amount=Decimal("1.00"), reference=f"r{n}"), settings=settings)[0].externalId
        for n in range(JOURNAL)
    ]  # fmt: skip


def test_command_list_reads_a_page_not_the_journal(
    redis_server: RedisServer, r: redis.Redis, journal: list[str]
) -> None:
    env = base_env(redis_server.url)

    def listed(*args: str) -> list[dict]:
        done = subprocess.run([sys.executable, "-m", "partnersync", "command", "list", *args],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    r.config_resetstat()
    first = listed("--limit", "20", "--json")
    assert len(first) == 20 and keys_read(r) < 150, keys_read(r)  # the journal holds 400
    assert [c["externalId"] for c in first] == journal[::-1][:20]  # newest first
    every = listed("--state", "PENDING_SEND", "--kind", "transfer", "--json")
    assert sorted(c["externalId"] for c in every) == sorted(journal)  # paged through, once each
    assert listed("--state", "ACCEPTED", "--json") == []
    refused = subprocess.run([sys.executable, "-m", "partnersync", "command", "list", "--kind",
                              "nosuch"], env=env, cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 2 and "nosuch" in refused.stderr


def test_command_list_follows_a_state_change(r: redis.Redis, journal: list[str]) -> None:
    """A command leaves its state's index for the new one's (as a worker's write does)."""
    catalog = partner.load(config.DEFAULT_PARTNERS)
    record = commands.load(r, journal[0])
    assert record is not None
    record.state = CommandState.ACCEPTED
    pipe = r.pipeline()
    commands._reindex(pipe, record, CommandState.PENDING_SEND)
    pipe.execute()
    accepted = commands.page(r, catalog, state="ACCEPTED").records
    assert [c.externalId for c in accepted] == [journal[0]]
    pending = commands.page(r, catalog, state="PENDING_SEND", limit=1000).records
    assert journal[0] not in {c.externalId for c in pending} and len(pending) == JOURNAL - 1


def test_a_signup_is_found_by_its_client_key_in_a_few_reads(
    r: redis.Redis, journal: list[str]
) -> None:
    xid = f"ps-{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    record = CommandRecord(externalId=xid, partner="saxo", kind="signup",
                           body=msgspec.Raw(b"{}"), state=CommandState.ACCEPTED, entityId="CK-1==",
                           result={"ClientKey": "CK-1==", "SignUpId": "S-1"},
                           createdAt=now, updatedAt=now)  # fmt: skip
    r.hset(*keys.journal(xid), msgspec.json.encode(record))
    signup = keys.entity_key("saxo", "signup", "CK-1==")
    r.hset(*keys.command_link(signup), xid)
    r.config_resetstat()
    assert _signup(r, "CK-1==") == ("CK-1==", "S-1")
    # a few, whatever the journal holds (400 other commands; an older store's keys looked up too)
    assert keys_read(r) <= 6, keys_read(r)
    assert store.load(r, ["saxo:signup:CK-1=="]) == [None]


def test_the_health_snapshot_shows_a_page_of_attention(
    redis_server: RedisServer, r: redis.Redis
) -> None:
    """`status` and the console's system page listed every entity needing a human (#38)."""
    from partnersync import health

    r.zadd(keys.ATTENTION, {f"saxo:activity:{n}": n for n in range(1000)})
    settings = config.load(base_env(redis_server.url), state_fallback=False)
    report = health.snapshot(r, settings)
    assert report["attentionCount"] == 1000
    assert report["attention"] == [f"saxo:activity:{n}" for n in range(999, 979, -1)]  # newest


def test_dlq_list_reads_a_page_not_the_queue(redis_server: RedisServer, r: redis.Redis) -> None:
    """`dlq list` read every letter of the queue for any listing (#38)."""
    from partnersync import dlq

    now = datetime.now(UTC)
    pipe = r.pipeline()
    for n in range(400):
        kind = "transfer" if n % 2 else "customer"
        dlq.add(pipe, dlq.DeadLetter(id=f"d{n:04d}", at=now, reason="reconcile",
                                     entity=f"tradevest:{kind}:{n}", error="404", traceback="",
                                     attempts=3), retention=3600)  # fmt: skip
    pipe.execute()
    env = base_env(redis_server.url)

    def listed(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "partnersync", "dlq", "list", *args],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done

    r.config_resetstat()
    first = listed("--limit", "20", "--json")
    ids = [json.loads(line)["id"] for line in first.stdout.splitlines()]
    assert len(ids) == 20 and keys_read(r) < 100, keys_read(r)  # the queue holds 400
    assert "more: --cursor" in first.stderr
    cursor = first.stderr.split("--cursor ")[1].split()[0]
    second = listed("--limit", "20", "--json", "--cursor", cursor)
    after = [json.loads(line)["id"] for line in second.stdout.splitlines()]
    assert len(after) == 20 and not set(after) & set(ids)
    transfers = listed("--kind", "transfer", "--all", "--json")
    got = [json.loads(line)["entity"] for line in transfers.stdout.splitlines()]
    assert len(got) == 200 and all(":transfer:" in e for e in got)
    table = listed("--limit", "5").stdout
    assert "5 of 400 dead letters" in table and "more: --cursor" in table


def test_a_command_link_of_an_older_store_still_reads_and_stands(r: redis.Redis) -> None:
    """Links are fields of per-kind bucket hashes; one kept as a key of its own by an older
    store is read, and still keeps its entity from another command."""
    catalog = partner.load(config.DEFAULT_PARTNERS)
    entity = keys.entity_key("tradevest", "transfer", "t-old")
    r.set(keys.older_command_link(entity), "cmd-a")
    assert commands.linked(r, entity) == "cmd-a"
    now = datetime.now(UTC)
    other = CommandRecord(externalId="cmd-b", partner="tradevest", kind="transfer",
                          body=msgspec.Raw(b"{}"), createdAt=now, updatedAt=now)  # fmt: skip
    kind = catalog.commands["transfer"]
    assert commands._link(r, kind, other, ["t-old", "t-new"]) == "t-new"
    assert commands.linked(r, keys.entity_key("tradevest", "transfer", "t-new")) == "cmd-b"
    assert commands.linked(r, entity) == "cmd-a"


def test_a_journal_entry_of_an_older_store_still_reads_and_moves_on_save(
    r: redis.Redis,
) -> None:
    """Journal entries are fields of bucket hashes; one an older store kept as a key of its
    own (plain JSON at ps:cmd:{externalId}) is read, and moves to its bucket when saved."""
    now = datetime.now(UTC)
    record = CommandRecord(externalId="cmd-older", partner="tradevest", kind="transfer",
                           body=msgspec.Raw(b"{}"), createdAt=now, updatedAt=now)  # fmt: skip
    r.set(keys.command("cmd-older"), msgspec.json.encode(record))
    assert commands.load(r, "cmd-older") == record
    record.state = CommandState.ACCEPTED
    commands.save(r, record)
    assert not r.exists(keys.command("cmd-older")) and r.hexists(*keys.journal("cmd-older"))
    loaded = commands.load(r, "cmd-older")
    assert loaded is not None and loaded.state == CommandState.ACCEPTED
