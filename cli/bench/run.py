"""The benchmark: every figure beside its baseline from the same run, and its target.

Loopback only; its own Redis (AOF on, `appendfsync always`: the receiver's default
durability), uvicorn processes on the stack deployments run (httptools, uvloop), wrk as
the load generator (a C generator: a Python one on these 2 cores would measure itself).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psutil
import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from cli import process
from cli.process import child_preexec
from cli.redisserver import RedisServer, free_port
from partnersync import config, inbox, keys, resp, store

SECRET = "bench-secret"


@dataclass
class Row:
    name: str
    value: float
    unit: str
    target: str
    ok: bool | None
    detail: str = ""


class BenchError(RuntimeError):
    pass


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: installing wrk (Debian package)...", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
        if (
            subprocess.run(
                ["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True
            ).returncode
            != 0
        ):
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk is needed: apt-get install wrk")
    return found


# Distinct bodies: PREFIX is new for every wrk run (wrk's Lua random is not seeded).
WRK_SCRIPT = """
local counter = 0
local prefix = "PREFIX"
request = function()
  counter = counter + 1
  local body = string.format('{"transferId":"%s-0000-4000-8000-%012x","status":"PENDING",' ..
    '"modifiedOn":"2026-01-01T00:00:00Z","notificationType":"CREATED"}', prefix, counter)
  return wrk.format("POST", nil, {["Content-Type"]="application/json", ["api-key"]="SECRET"}, body)
end
"""

# An exponential think time (rounded to wrk's whole ms, mean kept): senders that do not
# wait for each other, so requests arrive spread out, not in bursts.
THINK_TIME = """
function delay() return math.floor(-math.log(1 - math.random()) * MEAN + 0.5) end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


SCRIPTS = ("evalsha", "eval")  # INFO commandstats' names of a script call


def script_split(usec: Counter[str], events: float) -> str:
    """Where a script's µs went, per event: the commands it called (counted again under
    their own names: the bench's Redis serves only the receiver while it runs), the
    costliest first, and the rest — the Lua itself and its arguments and replies."""
    if not events:
        return "no events"
    called = Counter({k: v for k, v in usec.items() if k not in SCRIPTS})
    inner = sum(called.values())
    top = ", ".join(f"{k.upper()} {v / events:.1f}" for k, v in called.most_common(4))
    lua = (sum(usec[k] for k in SCRIPTS) - inner) / events
    return f"µs per event in the commands it calls {inner / events:.1f} ({top}), in Lua {lua:.1f}"


def parse_wrk(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in", text)
    out["requests"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["non2xx"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Socket errors:.*?timeout (\d+)", text)
    out["timeouts"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        out[f"p{pct}"] = float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")
    return out


class Bench:
    def __init__(self, *, quick: bool = False, smoke: bool = False, workdir: Path | None = None):
        self.quick = quick or smoke
        self.smoke = smoke  # correctness only: the smallest run that exercises every part
        self.owns_dir = workdir is None  # a directory of its own is removed at the end
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="partnersync-bench-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.rows: list[Row] = []
        self.redis: RedisServer | None = None
        self.lax_redis: RedisServer | None = None  # appendfsync everysec, durability none

    # -- plumbing ---------------------------------------------------------------------

    def __enter__(self) -> Bench:
        self.redis = RedisServer(self.dir / "redis", free_port())
        self.redis.start()
        self.r = redis.Redis.from_url(self.redis.url)
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            process.stop(proc, timeout=10)
        for server in (self.redis, self.lax_redis):
            if server is not None:
                server.stop()
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PARTNERSYNC_", "TRADEVEST_"))
        }
        assert self.redis is not None
        env.update(REDIS_URL=self.redis.url, TRADEVEST_WEBHOOK_SECRETS=SECRET, LOG_LEVEL="WARNING")
        env.update(extra)
        return env

    def spawn(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=child_preexec,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def uvicorn(
        self,
        target: str,
        port: int,
        env: dict[str, str],
        factory: bool = False,
        extra: tuple[str, ...] = (),
        wait: bool = True,
    ) -> subprocess.Popen[bytes]:
        """`target` on uvicorn's defaults (httptools and uvloop when installed); `extra`:
        more uvicorn options (`--http h11 --loop asyncio`). `wait=False`: started, not
        yet answering (`up` waits; servers started together start in parallel)."""
        args = ["-m", "uvicorn", target, "--port", str(port), "--log-level", "warning",
                "--no-access-log", *extra, *(["--factory"] if factory else [])]  # fmt: skip
        proc = self.spawn(args, env)
        return self._up(proc, port, target) if wait else proc

    def serve(self, port: int, env: dict[str, str], wait: bool = True) -> subprocess.Popen[bytes]:
        """The receiver as deployed: `partnersync serve`."""
        proc = self.spawn(["-m", "partnersync", "serve", "--port", str(port)], env)
        return self._up(proc, port, "partnersync serve") if wait else proc

    def _up(self, proc: subprocess.Popen[bytes], port: int, what: str) -> subprocess.Popen[bytes]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"{what} exited ({proc.returncode})")
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
                return proc
            except httpx.HTTPError:
                time.sleep(0.05)
        raise BenchError(f"{what} did not start")

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        process.stop(proc, timeout=15)

    def paced(
        self, url: str, seconds: float, connections: int, rate: float, lockstep: bool = False
    ) -> dict[str, float]:
        """A fixed mean request rate: wrk paces each connection with a think time after
        each response, and the achieved rate is connections / (think time + latency) — a
        short run measures the latency, then the think time is solved for the target rate.

        Senders are independent (an exponential think time each, as a partner's many
        delivery workers are): wrk's timers have 1 ms granularity, so a fixed delay
        (`lockstep`) makes every connection fire in the same millisecond, a burst of
        `connections` requests at once, and measures that burst instead."""
        mean = connections * 1000.0 / rate
        probe = self.wrk(url, 1 if self.smoke else 2, connections, mean, lockstep)
        if probe["rps"] > 0:
            latency = connections * 1000.0 / probe["rps"] - mean
            mean = max(0.1, connections * 1000.0 / rate - latency)
        return self.wrk(url, seconds, connections, mean, lockstep)

    def wrk(
        self,
        url: str,
        seconds: float,
        connections: int,
        delay_ms: float | None = None,
        lockstep: bool = False,
    ) -> dict[str, float]:
        """wrk's run; `delay_ms`: each connection's mean think time after a response
        (exponential, or exactly that with `lockstep`; wrk rounds it to whole ms)."""
        script = WRK_SCRIPT.replace("SECRET", SECRET).replace("PREFIX", uuid.uuid4().hex[:8])
        if delay_ms and lockstep:
            script += f"\nfunction delay() return {delay_ms:.3f} end\n"
        elif delay_ms:
            script += THINK_TIME.replace("MEAN", f"{delay_ms:.3f}")
        path = self.dir / f"wrk-{uuid.uuid4().hex[:6]}.lua"
        path.write_text(script)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk's, once it is waited for
        out = subprocess.run(
            [ensure_wrk(), "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "--latency", "-s", str(path), url],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures = parse_wrk(out.stdout)
        figures["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return figures

    def add(
        self, name: str, value: float, unit: str, target: str, ok: bool | None, detail: str = ""
    ) -> None:
        self.rows.append(Row(name, value, unit, target, ok, detail))
        print(f"bench: {name}: {value:.3g} {unit} {detail}", file=sys.stderr, flush=True)

    # -- 1, 2: receiver ----------------------------------------------------------------

    def redis_stats(self) -> tuple[Counter[str], Counter[str], float]:
        """INFO commandstats (µs and calls by command) and the µs of CPU the Redis process
        used in all (INFO cpu: networking and the AOF included). A script's µs include
        the commands it calls, which are counted again under their own names."""
        stats = self.r.info("commandstats")
        usec: Counter[str] = Counter()
        calls: Counter[str] = Counter()
        for k, v in stats.items():
            usec[k.removeprefix("cmdstat_")] = v["usec"]
            calls[k.removeprefix("cmdstat_")] = v["calls"]
        cpu = self.r.info("cpu")
        return usec, calls, (cpu["used_cpu_user"] + cpu["used_cpu_sys"]) * 1e6

    def accepted(self) -> int:
        return int(self.r.hget(keys.COUNTERS, "accepted:TRANSFER_NOTIFICATION") or 0)

    def receiver(self) -> None:
        seconds = 1 if self.smoke else 3 if self.quick else 8
        connections = 32
        route = "/webhooks/tradevest/transfer-notification"
        servers: dict[str, tuple[Any, int]] = {}
        for name, target, factory in (("raw ASGI", "cli.bench.apps:raw", False),
                                      ("bare Starlette", "cli.bench.apps:bare", False),
                                      ("RQ enqueue peer", "cli.bench.apps:peer", True)):  # fmt: skip
            port = free_port()
            servers[name] = (self.uvicorn(target, port, self.env(), factory, wait=False), port)
        port = free_port()
        servers["receiver"] = (self.serve(port, self.env(), wait=False), port)
        for name, (proc, port) in servers.items():
            self._up(proc, port, name)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        usec: Counter[str] = Counter()  # by command, over the receiver's runs
        calls: Counter[str] = Counter()
        cpu = accepted = 0.0
        server_cpu = {name: 0.0 for name in servers}  # s of CPU each server process used
        for _ in range(1 if self.quick else 2):  # interleaved: all see the same machine
            for name, (proc, port) in servers.items():
                (usec0, calls0, cpu0), accepted0 = self.redis_stats(), self.accepted()
                own0 = process_cpu(proc)
                runs[name].append(self.wrk(f"http://127.0.0.1:{port}{route}", seconds, connections))
                server_cpu[name] += process_cpu(proc) - own0
                if name == "receiver":
                    usec1, calls1, cpu1 = self.redis_stats()
                    usec.update(usec1 - usec0)
                    calls.update(calls1 - calls0)
                    cpu += cpu1 - cpu0
                    accepted += self.accepted() - accepted0
        best = {name: max(r, key=lambda x: x["rps"]) for name, r in runs.items()}
        rcv = best["receiver"]
        ok_responses = sum(x["requests"] - x["non2xx"] for x in runs["receiver"])
        held = inbox.count(self.r)
        durable = (
            accepted >= ok_responses
            and held == self.accepted()
            and not any(x["non2xx"] for x in runs["receiver"])
        )

        def describe(name: str) -> str:
            x = best[name]
            return f"{name} {x['rps']:.0f} req/s p50 {x['p50']:.2f} ms p99 {x['p99']:.2f} ms"

        def ratio(a: float, b: float) -> float:
            return a / b if b else 0.0

        bare_ratio = ratio(rcv["rps"], best["bare Starlette"]["rps"])
        self.add("receiver req/s ÷ bare Starlette", bare_ratio, "×", "≥ 0.9", bare_ratio >= 0.9,
                 f"({describe('receiver')}; {describe('bare Starlette')}; "
                 f"{int(accepted)} accepted, {held} in the inbox{'' if durable else ' — MISMATCH'})")  # fmt: skip
        raw_ratio = ratio(rcv["rps"], best["raw ASGI"]["rps"])
        self.add("receiver req/s ÷ raw ASGI app (the ceiling)", raw_ratio, "×", "report", None,
                 f"({describe('raw ASGI')})")  # fmt: skip
        peer_ratio = ratio(rcv["rps"], best["RQ enqueue peer"]["rps"])
        self.add("receiver req/s ÷ RQ enqueue peer", peer_ratio, "×", "≥ 5", peer_ratio >= 5,
                 f"({describe('RQ enqueue peer')}: header secret, json.loads, Queue.enqueue)")  # fmt: skip
        self.add("every accepted request stored", float(durable), "", "yes", durable)
        scripts = sum(usec[k] for k in SCRIPTS)
        script_calls = sum(calls[k] for k in SCRIPTS)
        per_event = scripts / accepted if accepted else float("nan")
        redis_cpu = cpu / accepted if accepted else float("nan")  # the process's, per event
        self.add("Redis CPU per accepted event", per_event, "µs", "≤ 8 µs", per_event <= 8,
                 f"(intake scripts per INFO commandstats over the receiver's runs: {scripts / 1e6:.2f} s "
                 f"for {int(accepted)} events; {script_split(usec, accepted)}; the Redis process "
                 f"in all, INFO cpu: {redis_cpu:.1f} µs per event)")  # fmt: skip

        def cpu_per_request(name: str) -> float:
            requests = sum(x["requests"] for x in runs[name])
            return server_cpu[name] / requests * 1e6 if requests else float("nan")

        own = {name: cpu_per_request(name) for name in servers}
        self.box_cpu(runs, own, redis_cpu)
        self.add("server process CPU per request: receiver ÷ bare Starlette",
                 ratio(own["receiver"], own["bare Starlette"]), "×", "report", None,
                 f"(µs of CPU per request: receiver {own['receiver']:.0f}, bare Starlette "
                 f"{own['bare Starlette']:.0f}, raw ASGI {own['raw ASGI']:.0f}; plus, for the "
                 f"receiver, Redis {redis_cpu:.0f} µs per event "
                 f"on the same 2 cores as the server and wrk; "
                 f"{accepted / script_calls if script_calls else float('nan'):.1f} events per intake call)")  # fmt: skip
        for name in ("raw ASGI", "bare Starlette", "RQ enqueue peer"):
            self.stop(servers[name][0])
        receiver_proc, receiver_port = servers["receiver"]
        receiver_url = f"http://127.0.0.1:{receiver_port}{route}"
        independent = self.paced(receiver_url, seconds if self.quick else 10, 10, 1000)
        burst = self.paced(receiver_url, seconds if self.quick else 10, 10, 1000, lockstep=True)
        self.add("ack latency p99 at 1,000 req/s", independent["p99"], "ms", "≤ 2 ms", independent["p99"] <= 2.0,
                 f"(10 independent senders: p50 {independent['p50']:.2f} ms, achieved {independent['rps']:.0f} "
                 f"req/s; in lockstep, bursts of 10 at once every 10 ms: p50 {burst['p50']:.2f} ms "
                 f"p99 {burst['p99']:.2f} ms)")  # fmt: skip
        self.stop(receiver_proc)
        self.fsync_floor(1 if self.smoke else 3 if self.quick else 5)
        self.durability_cost(route, seconds, rcv)
        self.h11(route, seconds)
        self.processes(route, seconds, rcv)

    def box_cpu(
        self, runs: dict[str, list[dict[str, float]]], own: dict[str, float], redis_us: float
    ) -> None:
        """The machine's CPU per request, load generator included: where the server, Redis
        and wrk share the cores, req/s is bounded by cores ÷ that sum, and the receiver's
        sum carries Redis's share, which the bare endpoint's does not."""
        wrk = {
            n: sum(x["cpu"] for x in r) / sum(x["requests"] for x in r) * 1e6
            for n, r in runs.items()
        }
        receiver = own["receiver"] + redis_us + wrk["receiver"]
        bare = own["bare Starlette"] + wrk["bare Starlette"]
        cores = os.cpu_count() or 1
        bound = bare / receiver if receiver else float("nan")
        self.add("box CPU per request: receiver ÷ bare Starlette", receiver / bare if bare else 0.0,
                 "×", "report", None,
                 f"(µs per request, server + Redis + wrk: receiver {own['receiver']:.0f} + "
                 f"{redis_us:.0f} + {wrk['receiver']:.0f} = {receiver:.0f}; bare Starlette "
                 f"{own['bare Starlette']:.0f} + 0 + {wrk['bare Starlette']:.0f} = {bare:.0f}; "
                 f"with all {cores} cores busy, receiver ÷ bare req/s can reach {bound:.2f})")  # fmt: skip

    def fsync_floor(self, seconds: float) -> None:
        """Redis alone, as the ack latency's baseline: one client, one SET a millisecond, on
        the bench's Redis (appendfsync always), each reply waited for. An acknowledgement
        waits at least for its batch's fsync, and one that arrives during another batch's
        fsync for that one too."""
        assert self.redis is not None
        latencies = []
        command = resp.pack((b"SET", b"bench:set", b"1"))
        with socket.create_connection(("127.0.0.1", self.redis.port), timeout=5) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            due = time.perf_counter()
            for _ in range(int(seconds * 1000)):
                started = time.perf_counter()
                conn.sendall(command)
                if conn.recv(64) != b"+OK\r\n":
                    raise BenchError("redis did not answer the fsync baseline's SET")
                latencies.append((time.perf_counter() - started) * 1000)
                due += 0.001
                time.sleep(max(0.0, due - time.perf_counter()))
        latencies.sort()
        p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
        self.add("Redis alone: fsync'd SET p99, one client at 1,000/s", p99, "ms", "report", None,
                 f"(p50 {p50:.2f} ms, {len(latencies)} SETs with appendfsync always: the floor under "
                 f"the ack latency with durability fsync)")  # fmt: skip

    def durability_cost(self, route: str, seconds: float, fsync: dict[str, float]) -> None:
        """The same receiver on a Redis that fsyncs every second, acknowledging what is in
        memory (PARTNERSYNC_DURABILITY=none): what the safe default costs."""
        self.lax_redis = RedisServer(
            self.dir / "redis-everysec", free_port(), appendfsync="everysec"
        )
        self.lax_redis.start()
        port = free_port()
        proc = self.serve(
            port, self.env(REDIS_URL=self.lax_redis.url, PARTNERSYNC_DURABILITY="none")
        )
        lax = self.wrk(f"http://127.0.0.1:{port}{route}", seconds, 32)
        paced = self.paced(
            f"http://127.0.0.1:{port}{route}", seconds if self.quick else 10, 10, 1000
        )
        self.stop(proc)
        ratio = fsync["rps"] / lax["rps"] if lax["rps"] else 0.0
        self.add("receiver req/s, durability fsync ÷ none", ratio, "×", "report", None,
                 f"(fsync {fsync['rps']:.0f} req/s p99 {fsync['p99']:.2f} ms; "
                 f"none on appendfsync everysec {lax['rps']:.0f} req/s p99 {lax['p99']:.2f} ms)")  # fmt: skip
        self.add("ack latency p99 at 1,000 req/s, durability none", paced["p99"], "ms", "report", None,
                 f"(p50 {paced['p50']:.2f} ms, achieved {paced['rps']:.0f} req/s; without the "
                 "fsync each acknowledgement waits for)")  # fmt: skip

    def h11(self, route: str, seconds: float) -> None:
        """Both on uvicorn's pure-Python parser and asyncio's loop (plain `uvicorn`)."""
        h11 = ("--http", "h11", "--loop", "asyncio")
        bare_port, receiver_port = free_port(), free_port()
        bare = self.uvicorn("cli.bench.apps:bare", bare_port, self.env(), extra=h11, wait=False)
        receiver = self.uvicorn("receiver.app:app_from_env", receiver_port, self.env(),
                                factory=True, extra=h11, wait=False)  # fmt: skip
        self._up(bare, bare_port, "bare Starlette on h11")
        self._up(receiver, receiver_port, "receiver on h11")
        b = self.wrk(f"http://127.0.0.1:{bare_port}{route}", seconds, 32)
        rcv = self.wrk(f"http://127.0.0.1:{receiver_port}{route}", seconds, 32)
        self.stop(bare)
        self.stop(receiver)
        ratio = rcv["rps"] / b["rps"] if b["rps"] else 0.0
        self.add("on h11 + asyncio: receiver ÷ bare Starlette", ratio, "×", "report", None,
                 f"(receiver {rcv['rps']:.0f} req/s, bare {b['rps']:.0f} req/s)")  # fmt: skip

    def processes(self, route: str, seconds: float, one: dict[str, float]) -> None:
        """WEB_CONCURRENCY=2 against one process, and /metrics summed over both."""
        port = free_port()
        proc = self.serve(port, self.env(WEB_CONCURRENCY="2"))
        two = self.wrk(f"http://127.0.0.1:{port}{route}", seconds, 32)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        self.stop(proc)
        m = re.search(r'partnersync_receiver_responses_total\{event_type="TRANSFER_NOTIFICATION",'
                      r'outcome="accepted"\} ([\d.e+]+)', text)  # fmt: skip
        counted = float(m.group(1)) if m else 0.0
        ratio = two["rps"] / one["rps"] if one["rps"] else 0.0
        answered = two["requests"] - two["non2xx"]
        summed = counted >= answered > 0
        self.add("WEB_CONCURRENCY=2 req/s ÷ 1 process", ratio, "×", "report", None,
                 f"({two['rps']:.0f} vs {one['rps']:.0f} req/s; 2 cores shared with wrk and Redis)")  # fmt: skip
        self.add("/metrics sums both processes", float(summed), "", "yes", summed,
                 f"({counted:.0f} counted, {answered:.0f} answered 2xx)")  # fmt: skip

    # -- 3: reconcile throughput per worker process ------------------------------------

    def reconcile(self, stub_url: str) -> None:
        from partnersync import context

        n = 100 if self.smoke else 600 if self.quick else 4000
        self.r.flushall()
        settings = config.load(
            self.env(TRADEVEST_BASE_URL=stub_url + "/tradevest", PARTNERSYNC_DRAINERS="1",
                     PARTNERSYNC_BATCH="200", PARTNERSYNC_COALESCE_MS="0"),
            state_fallback=False,
        )  # fmt: skip
        ctx = context.Context(settings, self.r)
        context.install(ctx)
        try:
            for i in range(0, n, 1000):
                ctx.workqueue.touch(
                    [f"tradevest:transfer:{uuid.uuid4()}" for _ in range(min(1000, n - i))]
                )
            queue = Queue(settings.queue, connection=self.r, serializer=JSONSerializer)
            worker = SimpleWorker([queue], connection=self.r, serializer=JSONSerializer)
            started = time.perf_counter()
            worker.work(burst=True, logging_level="WARNING")
            elapsed = time.perf_counter() - started
            stored = sum(store.counts(self.r).values())
        finally:
            context.install(None)
            ctx.close()
        entity_rate = stored / elapsed

        noop_queue = Queue("bench-noop", connection=self.r, serializer=JSONSerializer)
        jobs = 100 if self.smoke else 500 if self.quick else 3000
        with self.r.pipeline() as pipe:
            noop_queue.enqueue_many(
                [Queue.prepare_data("cli.bench.apps.noop", result_ttl=60) for _ in range(jobs)],
                pipeline=pipe,
            )
            pipe.execute()
        baseline = SimpleWorker([noop_queue], connection=self.r, serializer=JSONSerializer)
        started = time.perf_counter()
        baseline.work(burst=True, logging_level="WARNING")
        noop_rate = jobs / (time.perf_counter() - started)
        ratio = entity_rate / noop_rate
        self.add("reconciled entities/s per worker ÷ RQ no-op jobs/s", ratio, "×", "≥ 4", ratio >= 4 and stored == n,
                 f"({entity_rate:.0f} entities/s, {stored}/{n} stored; SimpleWorker no-op {noop_rate:.0f} jobs/s)")  # fmt: skip

    # -- 4, 5, 6: through the whole system -------------------------------------------------

    def system(self, stub_url: str) -> None:
        self.r.flushall()
        env = self.env(
            TRADEVEST_BASE_URL=stub_url + "/tradevest", PARTNERSYNC_CLOCK_INTERVAL_S="0.2"
        )
        port = free_port()
        receiver = self.serve(port, env)
        pool = self.spawn(["-m", "partnersync", "worker", "-n", "2"], env)
        clock = self.spawn(["-m", "partnersync", "clock"], env)
        url = f"http://127.0.0.1:{port}/webhooks/tradevest/transfer-notification"
        headers = {"api-key": SECRET, "Content-Type": "application/json"}
        time.sleep(1.5)
        with httpx.Client() as http:
            # 4. coalescing: 100 notifications for one entity within 1 s
            entity = str(uuid.uuid4())
            started = time.monotonic()
            for i in range(100):
                body = msgspec.json.encode({"transferId": entity, "status": "PENDING", "notificationType": "UPDATED",
                                            "modifiedOn": f"2026-01-01T00:00:00.{i:03d}Z"})  # fmt: skip
                assert http.post(url, content=body, headers=headers).status_code == 200
            burst = time.monotonic() - started
            key = f"tradevest:transfer:{entity}"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (
                self.r.zscore(keys.DIRTY, key) is not None or store.load(self.r, [key]) == [None]
            ):
                time.sleep(0.05)
            gets = http.get(stub_url + "/_stub/gets?all=1").json()["by_id"].get(entity, 0)
            loaded = store.load(self.r, [key])[0]
            final = loaded.status if loaded else None
            correct = final == "PROCESSED"
        self.add("coalescing: partner GETs for 100 notifications in 1 s", gets, "GETs", "≤ 2", gets <= 2 and correct,
                 f"(burst took {burst:.2f} s; final state {final})")  # fmt: skip

        # 5. end to end at 500 events/s, distinct entities
        since_ms = int(time.time() * 1000)  # the entities of this phase only
        seconds = 1 if self.smoke else 4 if self.quick else 10
        run = self.paced(url, seconds, 10, rate=500)
        time.sleep(2.0)
        latencies = self._event_to_store(since_ms)
        lat = sorted(latencies)
        p50 = lat[len(lat) // 2] if lat else float("nan")
        p99 = lat[int(len(lat) * 0.99) - 1] if lat else float("nan")
        self.add("end to end (webhook → store) p99 at 500 events/s", p99, "ms", "≤ 500 ms", p99 <= 500,
                 f"(p50 {p50:.0f} ms; {len(lat)} events measured, {run['rps']:.0f} req/s sent)")  # fmt: skip

        # 6. memory: RSS of the receiver and a worker as events flow
        total = 500 if self.smoke else 10_000 if self.quick else 100_000
        samples: list[tuple[int, float, float]] = []
        sent = 0
        workers = psutil.Process(pool.pid).children()
        while sent < total:
            chunk = self.wrk(url, 1 if self.smoke else 5, 32)
            sent += int(chunk["requests"])
            rss_r = psutil.Process(receiver.pid).memory_info().rss / 2**20
            rss_w = max((w.memory_info().rss for w in workers if w.is_running()), default=0) / 2**20
            samples.append((sent, rss_r, rss_w))
        (_, r0, w0), (_, r1, w1) = samples[0], samples[-1]
        growth = max(r1 - r0, w1 - w0)
        self.add("peak RSS after events: receiver / worker", max(s[1] for s in samples), "MiB", "no growth", growth < 25,
                 f"(receiver {r0:.0f}→{r1:.0f} MiB, worker {w0:.0f}→{w1:.0f} MiB over {sent} events)")  # fmt: skip
        for proc in (clock, pool, receiver):
            self.stop(proc)

    def _event_to_store(self, since_ms: int) -> list[float]:
        """ms from each event's receipt to its entity's first stored state."""
        out: list[float] = []
        found = [r.key for r in store.iterate(self.r, since_ms=since_ms)]
        for i in range(0, len(found), 500):
            for stored in store.read(self.r, found[i : i + 500]):
                if stored is None or not stored.history or not stored.history[0].source:
                    continue
                first = stored.history[0]
                received_ms = int(first.source[0].split("-", 1)[0])
                out.append(first.at.timestamp() * 1000 - received_ms)
        return out

    def run(self) -> list[Row]:
        ensure_wrk()
        stub_port = free_port()
        self.uvicorn("cli.bench.apps:stub", stub_port, self.env())
        stub_url = f"http://127.0.0.1:{stub_port}"
        self.receiver()
        self.reconcile(stub_url)
        self.system(stub_url)
        self.outbound()
        return self.rows

    # -- 7, 8: outbound webhooks ----------------------------------------------------------

    def outbound(self) -> None:
        """Change-to-delivery lag at 500 changes/s fanned out to 3 endpoints, through the
        worker pool and clock as deployed; then one worker process's deliveries per second
        on a backlog, beside plain httpx POSTs of the same bodies at the same concurrency
        (the HTTP leg's ceiling on this machine)."""
        from partnersync import endpoints

        self.r.flushall()
        port = free_port()
        self.uvicorn("cli.bench.apps:endpoints", port, self.env())
        base = f"http://127.0.0.1:{port}"
        for n in (1, 2, 3):
            endpoints.add(self.r, f"{base}/ep/{n}", ["tradevest.transfer.*"])
        time.sleep(0.01)
        env = self.env(TRADEVEST_BASE_URL=base + "/tradevest", PARTNERSYNC_CLOCK_INTERVAL_S="0.2")
        pool = self.spawn(["-m", "partnersync", "worker", "-n", "2"], env)
        clock = self.spawn(["-m", "partnersync", "clock"], env)
        time.sleep(1.5)
        warmup, seconds = 2, 1 if self.smoke else 4 if self.quick else 10
        measured_from = int(time.time() * 1000) + warmup * 1000  # the senders are up by then
        written = self._changes(500, warmup + seconds, entities=1000)
        got = self._arrivals(base, 3 * written, timeout=30)
        early = sorted(
            at - int(c.split("-")[0]) for _, c, at in got if int(c.split("-")[0]) < measured_from
        )
        lags = sorted(
            at - int(c.split("-")[0]) for _, c, at in got if int(c.split("-")[0]) >= measured_from
        )
        p50, p99 = _quantile(lags, 0.5), _quantile(lags, 0.99)
        complete = len({(n, c) for n, c, _ in got}) == 3 * written
        self.add("outbound: change → delivery p99 at 500 changes/s to 3 endpoints", p99, "ms", "≤ 100 ms",
                 p99 <= 100 and complete,
                 f"(p50 {p50:.0f} ms over {seconds} s after a {warmup} s warm-up, whose p99 was "
                 f"{_quantile(early, 0.99):.0f} ms as the senders started; {written} changes, "
                 f"{len(got)} deliveries of {3 * written}; worker pool of 2, PARTNERSYNC_SENDERS 2, "
                 f"clock, all as deployed)")  # fmt: skip
        for proc in (clock, pool):
            self.stop(proc)

        # 8. one worker process on a backlog, and the same POSTs from plain httpx
        self.r.delete(keys.OUT_SENDERS, keys.OUT_ROUTER)
        backlog = 200 if self.smoke else 2000 if self.quick else 6000
        self._changes(0, 0, entities=backlog, count=backlog)
        worker = self.spawn(["-m", "partnersync", "worker", "--single"], env)
        from partnersync import outbound

        outbound.Outbox(self.r, lease_ms=30_000, attempts=10).kick(
            config.load(env, state_fallback=False).queue
        )
        got = self._arrivals(base, 3 * backlog, timeout=120)
        self.stop(worker)
        times = sorted(at for _, _, at in got)
        rate = len(got) / max(0.001, (times[-1] - times[0]) / 1000) if len(times) > 1 else 0.0
        plain = self._plain_posts(base, 3 * backlog, per_endpoint=8)
        self.add("outbound: deliveries/s per worker process ÷ plain httpx POSTs", rate / plain, "×", "report", None,
                 f"({rate:.0f} deliveries/s by one worker process, {len(got)} of {3 * backlog}; plain httpx "
                 f"{plain:.0f} POSTs/s, a client of 8 connections per endpoint as the sender keeps)")  # fmt: skip

    def _changes(self, rate: float, seconds: float, *, entities: int, count: int = 0) -> int:
        """Transitions appended to the change stream as the store appends them: at `rate`
        a second for `seconds`, or `count` at once (rate 0), over `entities` entities."""
        keys_ = [f"tradevest:transfer:{uuid.uuid4()}" for _ in range(entities)]
        total = count or int(rate * seconds)
        started = time.monotonic()
        pipe = self.r.pipeline(transaction=False)
        for i in range(total):
            key = keys_[i % entities]
            pipe.xadd(keys.CHANGES, {
                "key": key, "partner": "tradevest", "kind": "transfer", "id": key.rsplit(":", 1)[1],
                "from": "PENDING", "to": "PROCESSED", "modifiedOn": "2026-01-01T00:00:01+00:00",
                "at": "2026-01-01T00:00:01+00:00", "decision": "applied", "source": "",
                "externalId": f"bench-{i}",
            })  # fmt: skip
            if rate:
                pipe.execute()
                pause = started + (i + 1) / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        pipe.execute()
        return total

    def _arrivals(self, base: str, want: int, timeout: float) -> list[tuple[str, str, int]]:
        deadline = time.monotonic() + timeout
        got: list[Any] = []
        while time.monotonic() < deadline:
            got = httpx.get(base + "/_got").json()
            if len(got) >= want:
                break
            time.sleep(0.2)
        httpx.get(base + "/_got?clear=1")
        return [(str(n), str(c), int(at)) for n, c, at in got]

    def _plain_posts(self, base: str, n: int, per_endpoint: int) -> float:
        """POSTs/s of plain httpx sending `n` like bodies to the 3 endpoints, a client of
        `per_endpoint` connections each (as the sender keeps a pool per endpoint)."""
        import asyncio

        body = b'{"type":"tradevest.transfer.PROCESSED","timestamp":"2026-01-01T00:00:01+00:00","data":{}}'

        async def go() -> float:
            limits = httpx.Limits(
                max_connections=per_endpoint, max_keepalive_connections=per_endpoint
            )
            clients = [httpx.AsyncClient(limits=limits) for _ in range(3)]
            todo = iter(range(n))

            async def one(client: httpx.AsyncClient, url: str) -> None:
                for i in todo:
                    await client.post(url, content=body, headers={"webhook-id": f"plain-{i}"})

            started = time.perf_counter()
            await asyncio.gather(*(one(c, f"{base}/ep/{k + 1}") for k, c in enumerate(clients)
                                   for _ in range(per_endpoint)))  # fmt: skip
            rate = n / (time.perf_counter() - started)
            for c in clients:
                await c.aclose()
            return rate

        rate = asyncio.run(go())
        httpx.get(base + "/_got?clear=1")
        return rate


def _quantile(sorted_values: list[int], q: float) -> float:
    return (
        float(sorted_values[max(0, int(len(sorted_values) * q) - 1)])
        if sorted_values
        else float("nan")
    )


def process_cpu(proc: subprocess.Popen[bytes]) -> float:
    """s of CPU (user + system) a process and its live children have used."""
    try:
        found = psutil.Process(proc.pid)
        every = [found, *found.children(recursive=True)]
        return sum(sum(p.cpu_times()[:2]) for p in every if p.is_running())
    except psutil.Error:
        return 0.0


def table(rows: list[Row]) -> None:
    from cli.table import render

    render(
        ["measure", "value", "target", "ok", "detail"],
        [
            (r.name, f"{r.value:.3g} {r.unit}".strip(), r.target,
             "-" if r.ok is None else ("yes" if r.ok else "NO"), r.detail)
            for r in rows
        ],
    )  # fmt: skip


def main(*, quick: bool, as_json: bool) -> int:
    with Bench(quick=quick) as bench:
        rows = bench.run()
    if as_json:
        print(msgspec.json.encode([r.__dict__ for r in rows]).decode())
    else:
        table(rows)
    return 0 if all(r.ok is not False for r in rows) else 1


__all__ = ["main", "Any"]
