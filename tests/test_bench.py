"""A smoke run of the benchmark: every part runs and its figures are consistent.
Correctness only — timings never go into tests."""

from __future__ import annotations

import pytest

from cli.bench.run import Bench, ensure_wrk, parse_wrk


def test_wrk_output_is_parsed() -> None:
    text = """Running 1s test @ http://127.0.0.1:1/x
  Latency Distribution
     50%    1.50ms
     75%    2.00ms
     90%    3.00ms
     99%  850.00us
  1000 requests in 1.00s, 100.00KB read
  Non-2xx or 3xx responses: 3
Requests/sec:   1000.50
"""
    parsed = parse_wrk(text)
    assert parsed["rps"] == 1000.5 and parsed["requests"] == 1000 and parsed["non2xx"] == 3
    assert parsed["p50"] == 1.5 and parsed["p99"] == 0.85


@pytest.mark.e2e
@pytest.mark.long  # 36 s: in `make chaos`, keeping `make test` under 10 minutes
def test_bench_smoke() -> None:
    try:
        ensure_wrk()
    except Exception as exc:  # pragma: no cover - the machine cannot install wrk
        pytest.skip(f"wrk unavailable: {exc}")
    with Bench(smoke=True) as bench:
        rows = {row.name: row for row in bench.run()}
    assert not bench.dir.exists()  # its temporary directory goes with it (#19)
    assert len(rows) == 20, sorted(rows)
    assert rows["every accepted request stored"].ok is True
    assert rows["/metrics sums both processes"].ok is True, rows["/metrics sums both processes"]
    for name in (
        "receiver req/s ÷ RQ enqueue peer",
        "Redis CPU per accepted event",
        "receiver req/s, durability fsync ÷ none",
        "on h11 + asyncio: receiver ÷ bare Starlette",
        "box CPU per request: receiver ÷ bare Starlette",
        "Redis alone: fsync'd SET p99, one client at 1,000/s",
    ):
        assert rows[name].value > 0, rows[name]  # fmt: skip
    redis_detail = rows["Redis CPU per accepted event"].detail
    # the split: the intake script calls SET for every event's dedupe key
    assert "in the commands it calls" in redis_detail and "SET " in redis_detail, redis_detail
    assert "in Lua" in redis_detail, redis_detail
    coalescing = rows["coalescing: partner GETs for 100 notifications in 1 s"]
    assert "final state PROCESSED" in coalescing.detail and coalescing.value >= 1
    assert "100/100 stored" in rows["reconciled entities/s per worker ÷ RQ no-op jobs/s"].detail
    assert rows["end to end (webhook → store) p99 at 500 events/s"].value > 0
    outbound = rows["outbound: change → delivery p99 at 500 changes/s to 3 endpoints"]
    assert outbound.value > 0 and "4500 deliveries of 4500" in outbound.detail, outbound
    per_worker = rows["outbound: deliveries/s per worker process ÷ plain httpx POSTs"]
    assert per_worker.value > 0 and "600 of 600" in per_worker.detail, per_worker


@pytest.mark.long  # in `make chaos`, keeping `make test` under 10 minutes
def test_scale_smoke(tmp_path) -> None:
    """`bench --scale`: every figure is produced on a small store (correctness only)."""
    from cli.bench.scale import Scale

    rows = {row.name: row for row in Scale(2000, tmp_path, rate=400, retention_s=1, repeat=5).run()}
    assert len(rows) == 15, sorted(rows)
    per_entity = rows["Redis bytes per stored entity at 2000, all included"]
    assert 200 < per_entity.value < 5000 and "2000 stored" in per_entity.detail
    assert "command records" in per_entity.detail and "change stream" in per_entity.detail
    steady = rows["steady state: memory spread once every lifetime passed"]
    assert steady.value >= 0 and "leaving entities" in steady.detail
