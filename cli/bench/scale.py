"""`partnersync bench --scale N`: the entity store at N stored entities, as a user runs it.

Two stores are filled side by side, one of 10k entities and one of N, each on its own Redis,
with the bench's realistic mix of both partners (cli/bench/mix.py), through what reconcile
and the command journal write (`store.write` for every transition, the watch entry and the
partner's index hook after the last, the accepted command's journal entry, indexes and
links), with the default settings (the change stream at PARTNERSYNC_CHANGES_MAXLEN, the
watch rule of PARTNERSYNC_WATCH_DAYS). The entities' last changes are spread over the last
90 days (PARTNERSYNC_RETENTION_DAYS), as in a store that has run a while.

- Redis bytes per stored entity at N (INFO used_memory, everything included), and what
  each part holds;
- every listing and lookup timed on both stores in turn, call for call, so both see the
  same machine: the ratio N ÷ 10k (target ≤ 2);
- the CLI and the console over HTTP on both stores;
- a steady state with every lifetime shortened to seconds: entities arrive and leave and
  memory stays flat (nothing per entity kept for good).
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import hiredis
import msgspec
import redis

from cli.bench import mix
from cli.bench.run import Row, table
from cli.redisserver import RedisServer, free_port
from partnersync import (
    commands,
    find,
    health,
    keys,
    partner,
    replies,
    retention,
    store,
    workqueue,
)  # fmt: skip
from partnersync.config import Settings

CATALOG = partner.load(("partners.tradevest", "partners.saxo"))
SETTINGS = Settings()  # the defaults: what a user runs
SPAN = timedelta(days=90)
SMALL = 10_000


@dataclass
class Picks:
    """Ids to look up, a few of each kind of question `entities find` answers."""

    ids: list[str] = field(default_factory=list)
    external_ids: list[str] = field(default_factory=list)
    transaction_ids: list[str] = field(default_factory=list)  # Saxo cash transfers
    references: list[str] = field(default_factory=list)  # Saxo ExternalReference
    client_keys: list[str] = field(default_factory=list)  # Saxo signups


def _ms(at: Any) -> int:
    return int(at.timestamp() * 1000)


def write_sample(
    pipe: redis.client.Pipeline, sample: mix.Sample, clock_ms: int, settings: Settings = SETTINGS
) -> None:
    """Queue what partnersync stores for the sample, change by change."""
    kind = CATALOG.kinds[(sample.partner, sample.kind)]
    before: store.Stored | None = None
    for record, transition in mix.writes(sample):
        store.write(pipe, record, transition, before=before,
                    changes_maxlen=settings.changes_maxlen,
                    history_max=settings.history_max)  # fmt: skip
        before = store.Stored(record, [*(before.history if before else []), transition])
    assert before is not None
    record = before.record
    due = None if kind.lifecycle.terminal(record.status) else store.next_check(
        clock_ms, _ms(record.updatedAt), kind.stale_after_s, settings.watch_days
    )  # fmt: skip
    store.watch(pipe, record.key, due)
    index = CATALOG.partners[sample.partner].index
    # a partner's lookups may expire (Saxo's positions: PARTNERSYNC_DLQ_RETENTION): in a
    # store that ran a while, those of entities changed longer ago are gone
    recent = clock_ms - _ms(record.updatedAt) < settings.dlq_retention * 1000
    if index is not None and kind.decoder is not None and (recent or sample.partner != "saxo"):
        index(pipe, kind, record.key, kind.decoder.decode(sample.bodies[-1]), settings)
    if record.status in kind.attention:
        pipe.zadd(keys.ATTENTION, {record.key: clock_ms})
    command = mix.command_record(sample)
    if command is not None:  # as submit, the send and _finish leave an accepted command
        xid = command.externalId
        submitted = _ms(command.createdAt)
        pipe.hset(*keys.journal(xid), commands.encode(command))
        pipe.zadd(keys.command_index(command.kind, str(command.state)), {xid: submitted})
        pipe.hincrby(keys.COMMAND_STATES, str(command.state), 1)
        pipe.hset(*keys.command_link(record.key), xid)
        store.link(pipe, command.partner, xid, record.key)
        for name, ident in commands.aliases(CATALOG.commands[command.kind], command):
            pipe.hset(*keys.alias(command.partner, ident), f"{name}={record.key}")


class FastPipe:
    """A pipeline for filling millions of entities: the commands `store.write` and the rest
    queue, packed by hiredis from their arguments as given. redis-py's per-argument encoding
    was two thirds of the fill's time; what Redis is sent is the same."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.reader = hiredis.Reader()
        self.queued: list[bytes] = []

    def _queue(self, *args: Any) -> None:
        self.queued.append(hiredis.pack_command(args))

    def set(self, key: str, value: Any, nx: bool = False, ex: int | None = None) -> None:
        self._queue("SET", key, value, *(("NX",) if nx else ()), *(("EX", ex) if ex else ()))

    def zadd(self, key: str, mapping: dict[str, int], nx: bool = False) -> None:
        pairs = [x for member, score in mapping.items() for x in (score, member)]
        self._queue("ZADD", key, *(("NX",) if nx else ()), *pairs)

    def zrem(self, key: str, *members: str) -> None:
        self._queue("ZREM", key, *members)

    def hincrby(self, key: str, name: str, n: int) -> None:
        self._queue("HINCRBY", key, name, n)

    def hset(self, key: str, name: str, value: Any) -> None:
        self._queue("HSET", key, name, value)

    def expireat(self, key: str, when: int) -> None:
        self._queue("EXPIREAT", key, when)

    def delete(self, *names: str) -> None:
        self._queue("DEL", *names)

    def hdel(self, key: str, *names: str) -> None:
        self._queue("HDEL", key, *names)

    def xadd(self, key: str, fields: dict[str, Any], maxlen: int, approximate: bool) -> None:
        flat = [x for pair in fields.items() for x in pair]
        self._queue("XADD", key, "MAXLEN", "~" if approximate else "=", maxlen, "*", *flat)

    def __len__(self) -> int:
        return len(self.queued)

    def execute(self) -> None:
        n = len(self.queued)
        self.sock.sendall(b"".join(self.queued))
        self.queued = []
        while n:
            reply = self.reader.gets()
            if reply is False:
                self.reader.feed(self.sock.recv(1 << 20))
                continue
            if isinstance(reply, hiredis.ReplyError):
                raise RuntimeError(f"fill: {reply}")
            n -= 1

    def close(self) -> None:
        self.sock.close()


class Store:
    """A store of `n` entities of the mix on its own Redis."""

    def __init__(self, n: int, workdir: Path, seed: int):
        self.n = n
        self.seed = seed
        self.server = RedisServer(workdir / f"redis-{n}", free_port(), appendfsync="no")
        self.picks = Picks()
        self.base = 0
        self.filled_per_s = 0.0

    def start(self) -> redis.Redis:
        self.server.start()
        self.r = redis.Redis.from_url(self.server.url)
        self.base = int(self.r.info("memory")["used_memory"])
        return self.r

    def fill(self) -> None:
        started = time.perf_counter()
        clock = workqueue.redis_ms(self.r)
        first = mix.now() - SPAN
        pipe = FastPipe(self.server.port)
        picking, chance = random.Random(5), 4000 / self.n  # ~4,000 picks, every kind
        for sample in mix.samples(self.n, first, SPAN, seed=self.seed):
            write_sample(pipe, sample, clock)  # type: ignore[arg-type]
            if picking.random() < chance:
                self._pick(sample)
            if len(pipe) >= 5000:
                pipe.execute()
        pipe.execute()
        pipe.close()
        self.filled_per_s = self.n / max(time.perf_counter() - started, 1e-9)

    def _pick(self, s: mix.Sample) -> None:
        p = self.picks
        p.ids.append(s.id)
        if s.kind == "cash-transfer":
            p.transaction_ids.append(s.id)
            if s.external_id:
                p.references.append(s.external_id)
        elif s.kind == "signup":
            p.client_keys.append(s.id)
        elif s.external_id:
            p.external_ids.append(s.external_id)

    def used(self) -> int:
        return int(self.r.info("memory")["used_memory"]) - self.base

    def stop(self) -> None:
        self.server.stop()


def median_ms(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def interleaved(calls: tuple[Callable[[], object], Callable[[], object]], repeat: int
                ) -> tuple[float, float]:  # fmt: skip
    """Median ms of each of two calls, run in turn so both see the same machine."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for side in (0, 1):
            started = time.perf_counter()
            calls[side]()
            times[side].append((time.perf_counter() - started) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def _breakdown(r: redis.Redis, stored: int) -> dict[str, float]:
    """Bytes per stored entity of each part of the store (MEMORY USAGE, sampled)."""

    def usage(key: str) -> int:
        return int(r.memory_usage(key, samples=1000) or 0)

    def each(pattern: str) -> float:
        found = [replies.text(k) for k in r.scan_iter(match=pattern, count=5000)]
        total = 0
        for start in range(0, len(found), 1000):
            pipe = r.pipeline(transaction=False)
            for key in found[start : start + 1000]:
                pipe.memory_usage(key, samples=1000)
            total += sum(int(x or 0) for x in pipe.execute())
        return float(total)

    parts = {
        "values": each(keys.PREFIX + "entities:*"),
        "indexes": each(keys.INDEX + "*"),
        "change stream": float(usage(keys.CHANGES)),
        "watch": float(usage(keys.WATCH)),
        "externalId links": each(keys.links(0).rsplit(":", 1)[0] + ":*"),
        "command records": each(keys.PREFIX + "cmds:*"),
        "command indexes and links": each(keys.command_index("*", "*"))
        + each(keys.PREFIX + "cmd-links:*") + each(keys.PREFIX + "aliases:*"),
    }  # fmt: skip
    return {name: total / stored for name, total in parts.items()}


class Scale:
    def __init__(self, n: int, workdir: Path, *, rate: int = 2000, retention_s: float = 10.0,
                 repeat: int = 200):  # fmt: skip
        self.n = n
        self.small_n = min(SMALL, n)
        self.rate = rate
        self.retention_s = retention_s
        self.repeat = repeat
        self.dir = workdir
        self.rows: list[Row] = []

    def add(self, name: str, value: float, unit: str, target: str, ok: bool | None,
            detail: str = "") -> None:  # fmt: skip
        self.rows.append(Row(name, value, unit, target, ok, detail))
        print(f"bench: {name}: {value:.4g} {unit} {detail}", file=sys.stderr, flush=True)

    def run(self) -> list[Row]:
        small, big = Store(self.small_n, self.dir, seed=7), Store(self.n, self.dir, seed=7)
        try:
            small.start()
            big.start()
            small.fill()
            big.fill()
            self.sizes(big)
            self.timings(small, big)
            self.cli(small, big)
            self.console_pages(small, big)
        finally:
            small.stop()
            big.stop()
        self.steady()
        return self.rows

    def sizes(self, big: Store) -> None:
        r = big.r
        stored = sum(store.counts(r).values())
        per_entity = big.used() / stored
        parts = _breakdown(r, stored)
        shown = ", ".join(f"{name} {b:.0f}" for name, b in parts.items())
        other = per_entity - sum(parts.values())
        self.add(f"Redis bytes per stored entity at {self.n}, all included", per_entity, "B",
                 "≤ 700", per_entity <= 700,
                 f"({shown}, other {other:.0f}; {stored} stored at "
                 f"{big.filled_per_s:.0f} entities/s)")  # fmt: skip

    def timings(self, small: Store, big: Store) -> None:
        def ops(s: Store) -> dict[str, Callable[[], object]]:
            r, p = s.r, s.picks
            status_settings = msgspec.structs.replace(SETTINGS, redis_url=s.server.url)
            newest = store.page(r, limit=1).records[0].updatedAt
            # a week: more than a page on the small store too (the same page size on both)
            window = int((newest - timedelta(days=7)).timestamp() * 1000)
            cycles = {name: itertools.cycle(random.Random(3).sample(values, len(values)))
                      for name, values in p.__dict__.items()}  # fmt: skip

            def finding(name: str) -> Callable[[], object]:
                return lambda: find.find(r, CATALOG, next(cycles[name]))

            def signup() -> object:
                entity = keys.entity_key("saxo", "signup", next(cycles["client_keys"]))
                linked = commands.linked(r, entity)
                assert linked is not None, entity
                return commands.load(r, linked)

            return {
                "entities list --kind transfer --status PROCESSED": lambda: store.page(
                    r, kind="transfer", status="PROCESSED"),
                "entities list": lambda: store.page(r),
                "entities list --since 7d": lambda: store.page(r, since_ms=window),
                "find entity id": finding("ids"),
                "find externalId": finding("external_ids"),
                "find Saxo TransactionId": finding("transaction_ids"),
                "find Saxo ExternalReference": finding("references"),
                "command list": lambda: commands.page(r, CATALOG, limit=50),
                "command list --kind transfer --state ACCEPTED": lambda: commands.page(
                    r, CATALOG, kind="transfer", state="ACCEPTED", limit=50),
                "signup by ClientKey (saxo attach)": signup,
                "health snapshot (status)": lambda: health.snapshot(r, status_settings),
            }  # fmt: skip

        at_small, at_big = ops(small), ops(big)
        for name in at_small:
            low, high = interleaved((at_small[name], at_big[name]), self.repeat)
            ratio = high / max(low, 1e-6)
            self.add(f"{name} at {self.n} ÷ at {self.small_n}", ratio, "×", "≤ 2", ratio <= 2,
                     f"({low:.2f} → {high:.2f} ms, interleaved)")  # fmt: skip

    def cli(self, small: Store, big: Store) -> None:
        def run(s: Store, *args: str) -> Callable[[], object]:
            env = {"REDIS_URL": s.server.url, "PATH": "/usr/bin:/bin"}

            def call() -> object:
                done = subprocess.run([sys.executable, "-m", "partnersync", *args], env=env,
                                      capture_output=True, text=True, check=False)  # fmt: skip
                if done.returncode != 0:
                    raise RuntimeError(f"partnersync {' '.join(args)}: {done.stderr.strip()}")
                return done

            return call

        listed = interleaved((run(small, "entities", "list", "--kind", "transfer"),
                              run(big, "entities", "list", "--kind", "transfer")), 3)  # fmt: skip
        found = interleaved((run(small, "entities", "find", small.picks.ids[0]),
                             run(big, "entities", "find", big.picks.ids[-1])), 3)  # fmt: skip
        commanded = interleaved((run(small, "command", "list"), run(big, "command", "list")), 3)
        worst = max(listed[1], found[1], commanded[1])
        self.add(f"CLI list / find / command list at {self.n} (wall, Python start included)",
                 worst, "ms", "interactive", None,
                 f"(entities list {listed[0]:.0f} → {listed[1]:.0f} ms, find {found[0]:.0f} → "
                 f"{found[1]:.0f} ms, command list {commanded[0]:.0f} → {commanded[1]:.0f} ms; "
                 f"{self.small_n} → {self.n})")  # fmt: skip

    def console_pages(self, small: Store, big: Store) -> None:
        """The console's pages over HTTP, both stores in turn (median of 20 loads each)."""
        with _Console(small, self.dir) as low, _Console(big, self.dir) as high:
            pages = {
                "overview": ("/", "/"),
                "entities": ("/entities", "/entities"),
                "entities filtered": ("/entities?kind=transfer&status=PROCESSED",) * 2,
                "entity": (f"/entity/tradevest:transfer:{low.transfer}",
                           f"/entity/tradevest:transfer:{high.transfer}"),
                "commands": ("/commands", "/commands"),
                "search by externalId": (f"/search?q={small.picks.external_ids[1]}",
                                         f"/search?q={big.picks.external_ids[-2]}"),
            }  # fmt: skip
            timings = {}
            for name, (a, b) in pages.items():
                timings[name] = interleaved((low.loader(a), high.loader(b)), 20)
        worst = max(h / max(lo, 1e-6) for lo, h in timings.values())
        self.add(f"console pages at {self.n} ÷ at {self.small_n} (median HTTP load, worst)",
                 worst, "×", "≤ 2", worst <= 2,
                 "(" + ", ".join(f"{k} {lo:.1f} → {h:.1f} ms"
                                 for k, (lo, h) in timings.items()) + ")")  # fmt: skip

    def steady(self) -> None:
        """Entities of the mix arrive at `rate`/s; every lifetime is `retention_s`: final and
        resting entities leave, their tombstones, links and commands after them. Memory is
        sampled once all lifetimes have passed: flat means nothing is kept for good. Live
        entities (ACTIVE persons, customers, products, APPROVED documents: the client base)
        are left out, as they grow with the clients, not time."""
        leaving = [s for s in mix.samples(mix.PER_CLIENT, mix.now(), SPAN)
                   if s.kind not in mix.LIVE]  # fmt: skip
        kinds = {(s.partner, s.kind) for s in leaving}
        days = self.retention_s / 86400
        # every lifetime shortened alike: retention, tombstones, commands (and their aliases), the
        # partners' own TTL'd keys, and the change stream to what one retention writes
        transitions = sum(len(s.statuses) for s in leaving) / len(leaving)
        lifetimes = msgspec.structs.replace(
            SETTINGS, retention_days=days, resting_days=days, tombstone_days=days,
            command_retention_days=2 * days, dlq_retention=max(1, int(self.retention_s)),
            changes_maxlen=int(self.rate * transitions * self.retention_s),
        )  # fmt: skip
        server = RedisServer(self.dir / "redis-steady", free_port(), appendfsync="no")
        server.start()
        try:
            r = redis.Redis.from_url(server.url)
            base = int(r.info("memory")["used_memory"])
            rng = random.Random(11)
            written = 0
            samples: list[tuple[float, int]] = []
            started = time.monotonic()
            next_sample = 0.0
            lifetime = 3 * self.retention_s  # eviction, then tombstones, then commands
            while (elapsed := time.monotonic() - started) < lifetime + 4 * self.retention_s:
                due = int(elapsed * self.rate / len(leaving)) + 1  # clients so far
                pipe = r.pipeline(transaction=False)
                clock = workqueue.redis_ms(r)
                for n in range(written, due):
                    for s in mix.client(n, mix.now(), rng):
                        if (s.partner, s.kind) in kinds:
                            write_sample(pipe, _now(s), clock, lifetimes)
                pipe.execute()
                written = due
                retention.sweep(r, CATALOG, days, days, 2 * days, days)  # as the clock does
                if elapsed >= next_sample:
                    samples.append((elapsed, int(r.info("memory")["used_memory"]) - base))
                    next_sample += self.retention_s / 10
                time.sleep(0.05)
            reached = [used for t, used in samples if t >= lifetime]
            spread = (max(reached) - min(reached)) / statistics.mean(reached)
            per_client = len(leaving)
            left = r.dbsize()
        finally:
            server.stop()
        self.add("steady state: memory spread once every lifetime passed", spread * 100, "%",
                 "≤ 10", spread <= 0.10,
                 f"({statistics.mean(reached) / 2**20:.1f} MiB; {written} clients × "
                 f"{per_client} leaving entities at {self.rate} entities/s, every lifetime "
                 f"{self.retention_s:.0f} s; {len(reached)} samples; {left} keys at the end)")  # fmt: skip


def _now(sample: mix.Sample) -> mix.Sample:
    """The sample as if its changes happened just now (the steady state's arrivals)."""
    shift = mix.now() - sample.at[-1]
    return dataclasses.replace(sample, at=[a + shift for a in sample.at])


class _Console:
    """A console process on a store, signed in."""

    def __init__(self, s: Store, workdir: Path):
        self.store = s
        self.dir = workdir
        self.transfer = next(rec.id for rec in store.page(s.r, kind="transfer", limit=1).records)

    def __enter__(self) -> _Console:
        import re

        import httpx

        from cli.supervisor import wait_http
        from console import users

        path = self.dir / f"console-users-{self.store.n}"
        users.add(path, "bench", "viewer", "bench-password")
        port = free_port()
        env = {"REDIS_URL": self.store.server.url, "PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING",
               "PARTNERSYNC_CONSOLE_SECRET": uuid.uuid4().hex, "PARTNERSYNC_CONSOLE_USERS": str(path),
               "PARTNERSYNC_CONSOLE_SECURE_COOKIES": "false"}  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "partnersync", "console", "--port", str(port)], env=env
        )
        base = f"http://127.0.0.1:{port}"
        if not wait_http(base + "/login", self.proc, timeout=30):
            raise RuntimeError("the console did not come up")
        self.http = httpx.Client(base_url=base, timeout=30)
        login = self.http.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert token is not None
        self.http.post("/login", data={"csrf": token.group(1), "name": "bench",
                                       "password": "bench-password"})  # fmt: skip
        return self

    def loader(self, url: str) -> Callable[[], None]:
        return lambda: self.load(url)

    def load(self, url: str) -> None:
        answer = self.http.get(url, follow_redirects=True)
        if answer.status_code != 200 or "Sign in" in answer.text:
            raise RuntimeError(f"console {url}: {answer.status_code}")

    def __exit__(self, *exc: object) -> None:
        from cli import process

        self.http.close()
        process.stop(self.proc, timeout=10)


def main(n: int, as_json: bool) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="partnersync-scale-"))
    try:
        rows = Scale(n, workdir).run()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if as_json:
        print(msgspec.json.encode([r.__dict__ for r in rows]).decode())
    else:
        table(rows)
    return 0 if all(r.ok is not False for r in rows) else 1
