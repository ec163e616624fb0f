"""`partnersync bench --scale N`: the entity store at N stored entities (#17).

Synthetic Tradevest transfers are written through the store's own code (`store.write`, as
reconcile calls it): two transitions each (None → PENDING → a final status: 90% PROCESSED,
10% REJECTED), an externalId each, the partner's data as the sandbox's GET returns it. The
store is measured at 10k and at N entities:

- Redis bytes per stored entity (INFO used_memory, indexes, counts and links included);
- a filtered list's first page, an unfiltered one, a time window's; find by partner id and
  by externalId (median of repeated calls, in process), and the CLI's wall time for both;
- then a steady state with retention shortened to seconds: memory sampled while entities
  arrive and leave, and the bytes each evicted entity leaves for good (its tombstone and
  externalId link).
"""

from __future__ import annotations

import itertools
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import redis

from cli.bench.run import Row, table
from cli.redisserver import RedisServer, free_port
from partnersync import find, keys, partner, retention, store
from schemas.store import EntityRecord, Transition

CATALOG = partner.load(("partners.tradevest", "partners.saxo"))
_encode = msgspec.json.encode


def synthetic(n: int, at: datetime) -> tuple[list[tuple[EntityRecord, Transition]], str, str]:
    """Entity n's two writes (record, transition), its id and its externalId."""
    id = str(uuid.UUID(int=random.getrandbits(128), version=4))
    external_id = f"tx-{uuid.UUID(int=random.getrandbits(128), version=4)}"
    key = keys.entity_key("tradevest", "transfer", id)
    final = "REJECTED" if n % 10 == 9 else "PROCESSED"
    stamp = at.isoformat().replace("+00:00", "Z")
    writes = []
    previous = None
    for status in ("PENDING", final):
        data = {"transferId": id, "transferStatus": status, "createdOn": stamp, "modifiedOn": stamp,
                "customerId": str(uuid.UUID(int=random.getrandbits(128), version=4)),
                "customerProductId": str(uuid.UUID(int=n % 5000, version=4)),
                "amount": round(10 + n % 9000 * 0.37, 2), "currency": "EUR",
                "reference": f"Invoice {n}", "externalId": external_id,
                **({"rejectReason": "INSUFFICIENT_BALANCE"} if status == "REJECTED" else {})}  # fmt: skip
        record = EntityRecord(key=key, partner="tradevest", kind="transfer", id=id, status=status,
                              modifiedOn=at, updatedAt=at, createdAt=at, externalId=external_id,
                              data=msgspec.Raw(_encode(data)))  # fmt: skip
        source = [f"{int(at.timestamp() * 1000)}-{n}"]
        writes.append(
            (
                record,
                Transition(key=key, from_=previous, to=status, modifiedOn=at, at=at, source=source),
            )  # fmt: skip
        )
        previous = status
    return writes, id, external_id


def fill(r: redis.Redis, start: int, stop: int, clock: Any) -> tuple[list[str], list[str]]:
    """Store entities start..stop-1 through `store.write`; a sample of their ids back."""
    ids: list[str] = []
    external_ids: list[str] = []
    for chunk in range(start, stop, 1000):
        pipe = r.pipeline(transaction=False)
        for n in range(chunk, min(stop, chunk + 1000)):
            (first, second), id, external_id = synthetic(n, clock(n))
            store.write(pipe, *first, before=None, changes_maxlen=1000)
            store.write(pipe, *second, before=store.Stored(first[0], [first[1]]),
                        changes_maxlen=1000)  # fmt: skip
            if n % 97 == 0:
                ids.append(id)
                external_ids.append(external_id)
        pipe.execute()
    return ids, external_ids


def median_ms(call: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


class Scale:
    def __init__(self, n: int, workdir: Path, *, rate: int = 2000, retention_s: float = 10.0,
                 warmup: int = 80_000):  # fmt: skip
        self.n = n
        self.warmup = warmup
        self.rate = rate
        self.retention_s = retention_s
        self.dir = workdir
        self.server = RedisServer(workdir / "redis", free_port(), appendfsync="no")
        self.rows: list[Row] = []

    def add(self, name: str, value: float, unit: str, target: str, ok: bool | None,
            detail: str = "") -> None:  # fmt: skip
        self.rows.append(Row(name, value, unit, target, ok, detail))
        print(f"bench: {name}: {value:.4g} {unit} {detail}", file=sys.stderr, flush=True)

    def timings(self, r: redis.Redis, ids: list[str], external_ids: list[str]) -> dict[str, float]:
        newest = store.page(r, limit=1).records[0].updatedAt
        window = int((newest - timedelta(hours=1)).timestamp() * 1000)
        picks = random.sample(range(len(ids)), min(200, len(ids)))
        it = itertools.cycle(picks)
        return {
            "filtered": median_ms(lambda: store.page(r, kind="transfer", status="PROCESSED"), 200),
            "unfiltered": median_ms(lambda: store.page(r), 200),
            "window": median_ms(lambda: store.page(r, kind="transfer", since_ms=window), 200),
            "find id": median_ms(lambda: find.find(r, CATALOG, ids[next(it)]), 200),
            "find externalId": median_ms(
                lambda: find.find(r, CATALOG, external_ids[next(it)]), 200
            ),
        }

    def cli_ms(self, *args: str) -> float:
        env = {"REDIS_URL": self.server.url, "PATH": "/usr/bin:/bin"}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "partnersync", *args], env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"partnersync {' '.join(args)}: {done.stderr.strip()}")
        return (time.perf_counter() - started) * 1000

    def console_pages(self, ids: list[str], xids: list[str]) -> None:
        """The console's pages over HTTP at N entities (median of 20 loads each)."""
        import re

        import httpx

        from cli import process
        from cli.supervisor import wait_http
        from console import users

        path = self.dir / "console-users"
        users.add(path, "bench", "viewer", "bench-password")
        port = free_port()
        env = {"REDIS_URL": self.server.url, "PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING",
               "PARTNERSYNC_CONSOLE_SECRET": uuid.uuid4().hex, "PARTNERSYNC_CONSOLE_USERS": str(path),
               "PARTNERSYNC_CONSOLE_SECURE_COOKIES": "false"}  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-m", "partnersync", "console", "--port", str(port)],
                                env=env)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            if not wait_http(base + "/login", proc, timeout=30):
                raise RuntimeError("the console did not come up")
            with httpx.Client(base_url=base, timeout=30) as http:
                login = http.get("/login")
                token = re.search(r'name="csrf" value="([^"]+)"', login.text)
                assert token is not None
                http.post("/login", data={"csrf": token.group(1), "name": "bench",
                                          "password": "bench-password"})  # fmt: skip
                pages = {
                    "overview": "/",
                    "entities (first page)": "/entities",
                    "entities filtered": "/entities?kind=transfer&status=PROCESSED",
                    "entity": f"/entity/tradevest:transfer:{ids[len(ids) // 2]}",
                    "search by externalId": f"/search?q={xids[len(xids) // 3]}",
                }
                timings = {}
                for name, url in pages.items():

                    def load(url: str = url) -> None:
                        answer = http.get(url, follow_redirects=True)
                        if answer.status_code != 200 or "Sign in" in answer.text:
                            raise RuntimeError(f"console {url}: {answer.status_code}")

                    timings[name] = median_ms(load, 20)
        finally:
            process.stop(proc, timeout=10)
        slowest = max(timings.values())
        self.add(f"console pages at {self.n} (median HTTP load, slowest)", slowest, "ms",
                 "reported", None,
                 "(" + ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items()) + ")")  # fmt: skip

    def run(self) -> list[Row]:
        self.server.start()
        try:
            r = redis.Redis.from_url(self.server.url)
            self.sizes(r)
            self.steady(r)
        finally:
            self.server.stop()
        return self.rows

    def sizes(self, r: redis.Redis) -> None:
        base = int(r.info("memory")["used_memory"])
        origin = datetime(2026, 1, 1, tzinfo=UTC)

        def clock(n: int) -> datetime:
            return origin + timedelta(milliseconds=n * 50)  # 20 entities a second, in order

        small = min(10_000, self.n)
        ids, xids = fill(r, 0, small, clock)
        per_small = (int(r.info("memory")["used_memory"]) - base) / small
        at_small = self.timings(r, ids, xids)
        started = time.perf_counter()
        more_ids, more_xids = fill(r, small, self.n, clock)
        rate = (self.n - small) / max(time.perf_counter() - started, 1e-9)
        ids += more_ids
        xids += more_xids
        stored = sum(store.counts(r).values())
        per_entity = (int(r.info("memory")["used_memory"]) - base) / stored
        at_n = self.timings(r, ids, xids)
        key = keys.entity_key("tradevest", "transfer", ids[-1])
        parts = (
            f"(value {r.memory_usage(keys.entity(key))} B, externalId link "
            f"{self.kept_bytes(r) / stored:.0f} B; "
            f"{per_small:.0f} B at {small}; {stored} stored at {rate:.0f} entities/s)"
        )
        self.add(f"Redis bytes per stored final entity at {self.n}", per_entity, "B", "≤ 1024",
                 per_entity <= 1024, parts)  # fmt: skip
        for name, value in at_n.items():
            ratio = value / max(at_small[name], 1e-6)
            what = "first page" if name in ("filtered", "unfiltered", "window") else "lookup"
            self.add(f"{name} {what} at {self.n} ÷ at {small}", ratio, "×", "≤ 2", ratio <= 2,
                     f"({at_small[name]:.2f} → {value:.2f} ms)")  # fmt: skip
        listed = self.cli_ms("entities", "list", "--kind", "transfer", "--status", "PROCESSED")
        found = self.cli_ms("entities", "find", ids[len(ids) // 2])
        self.add(f"CLI list / find at {self.n} (wall, Python start included)", max(listed, found),
                 "ms", "interactive", None, f"(list {listed:.0f} ms, find {found:.0f} ms)")  # fmt: skip
        self.console_pages(ids, xids)
        r.flushall()

    def kept_bytes(self, r: redis.Redis) -> int:
        """Bytes of every tombstone and externalId-link bucket (what evicted entities keep)."""
        pipe = r.pipeline(transaction=False)
        for n in range(store.BUCKETS):
            pipe.memory_usage(keys.gone(n))
            pipe.memory_usage(keys.links(n))
        return sum(int(x or 0) for x in pipe.execute())

    def steady(self, r: redis.Redis) -> None:
        """Entities arrive at `rate`/s and leave `retention_s` after their last change, after
        a warm-up (entities a day old, evicted at once) that leaves every bucket in place, as
        in a store that has run a while."""
        rate, retention_s = self.rate, self.retention_s
        days = retention_s / 86400
        day_ago = datetime.now(UTC) - timedelta(days=1)
        fill(r, 0, self.warmup, lambda n: day_ago)
        while retention.sweep(r, CATALOG, days):
            pass
        written = self.warmup
        base = int(r.info("memory")["used_memory"])
        kept_base = self.kept_bytes(r)
        samples: list[tuple[float, int, int, int]] = []  # (t, used, kept, evicted so far)
        evicted = 0
        started = time.monotonic()
        next_sample = 0.0
        while (elapsed := time.monotonic() - started) < 4 * retention_s:
            due = self.warmup + int(elapsed * rate) + rate // 10
            fill(r, written, due, lambda n: datetime.now(UTC))
            written = due
            evicted += retention.sweep(r, CATALOG, days)
            if elapsed >= next_sample:
                used = int(r.info("memory")["used_memory"]) - base
                samples.append((elapsed, used, self.kept_bytes(r) - kept_base, evicted))
                next_sample += retention_s / 20
            time.sleep(0.05)
        reached = [x for x in samples if x[0] >= retention_s * 1.5]
        live = [used - kept for _, used, kept, _ in reached]
        spread = (max(live) - min(live)) / statistics.mean(live)
        first, last = reached[0], reached[-1]
        per_evicted = (last[2] - first[2]) / max(last[3] - first[3], 1)
        per_live = statistics.mean(live) / (rate * retention_s)
        self.add("steady state: memory less what evicted entities keep, spread once retention "
                 "reached", spread * 100, "%", "≤ ±5% (≤ 10 spread)", spread <= 0.10,
                 f"({statistics.mean(live) / 2**20:.1f} MiB live; {written - self.warmup} written, "
                 f"{evicted} evicted at {rate}/s, retention {retention_s:.0f} s, "
                 f"{len(reached)} samples)")  # fmt: skip
        self.add("bytes kept for good per evicted entity (tombstone + externalId link)",
                 per_evicted, "B", "compact", None,
                 f"(at 90 days' retention that is {per_evicted / per_live / 90 * 100:.2f}% of the "
                 f"live store a day; live {per_live:.0f} B/entity)")  # fmt: skip


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
