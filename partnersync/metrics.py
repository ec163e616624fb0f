"""Prometheus metrics. Redis is the shared registry: workers and clock add their counts to
Redis hashes in pipelines they send anyway, and `GET /metrics` on the receiver renders
them together with the receiver's own in-process metrics. One scrape target, no port per
worker, nothing lost when a worker restarts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from partnersync import endpoints, keys, outbound, replies, rqbridge, workqueue

# Seconds from receiving an event to its entity's state being stored.
RECONCILE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def bucket(seconds: float) -> str:
    for le in RECONCILE_BUCKETS:
        if seconds <= le:
            return str(le)
    return "+Inf"


def observe_reconcile(pipe: redis.client.Pipeline, seconds: float) -> None:
    pipe.hincrby(keys.RECONCILE_LATENCY, bucket(seconds), 1)
    pipe.hincrbyfloat(keys.RECONCILE_LATENCY, "sum", seconds)


def count_calls(pipe: redis.client.Pipeline, calls: dict[str, int]) -> None:
    """Flush a process's partner-call counts ("partner:status" -> n) into Redis."""
    for name, n in calls.items():
        pipe.hincrby(keys.PARTNER_CALLS, name, n)
    calls.clear()


def _decode(h: dict[bytes, bytes]) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in h.items()}


class RedisCollector(Collector):
    """The engine's figures from Redis, then each partner's own (`Partner.metrics`)."""

    def __init__(
        self,
        connection: redis.Redis,
        queue: str,
        partners: Sequence[Callable[[redis.Redis, int], Iterable[Metric]]] = (),
    ):
        self.connection = connection
        self.queue = queue
        self.partners = partners

    def describe(self) -> Iterator[Metric]:
        # Without it the registry calls collect() when the collector is registered: a
        # Redis round trip at start, which fails while Redis is absent or loading.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        now = workqueue.now_ms()
        pipe = self.connection.pipeline(transaction=False)
        pipe.hgetall(keys.COUNTERS)
        pipe.llen(rqbridge.queue_key(self.queue))
        pipe.zcard(rqbridge.started_key(self.queue))
        pipe.zcard(rqbridge.failed_key(self.queue))
        pipe.zcount(keys.DIRTY, "-inf", now)
        pipe.zcard(keys.DIRTY)
        pipe.zcount(keys.DRAINERS, now, "+inf")
        pipe.zcard(keys.DLQ)
        pipe.zcard(keys.ATTENTION)
        pipe.hgetall(keys.JOB_OUTCOMES)
        pipe.hgetall(keys.RECONCILE_LATENCY)
        pipe.hgetall(keys.PARTNER_CALLS)
        pipe.hgetall(keys.CLOCK)
        pipe.hgetall(keys.COMMAND_STATES)
        pipe.hgetall(keys.ENTITY_COUNTS)
        pipe.hgetall(keys.RATE_LIMITS)
        pipe.hgetall(keys.RECHECKS)
        pipe.zcard(keys.WATCH)
        (counters, queued, started, failed, due, dirty, drainers, dead, attention, outcomes,
         latency, calls, clock, command_states, entity_counts, rates, rechecks,
         watched) = pipe.execute()  # fmt: skip

        deliveries = CounterMetricFamily(
            "partnersync_deliveries", "Events taken in, by event type, source and outcome",
            labels=["event_type", "source", "outcome"],
        )  # fmt: skip
        sources = {"recovered": "sweeper", "ens": "ens"}
        for name, value in _decode(counters).items():
            outcome, _, event_type = name.partition(":")
            prefix, _, rest = outcome.partition("-")
            source = sources.get(prefix, "webhook") if rest else "webhook"
            deliveries.add_metric(
                [event_type, source, rest if prefix in sources and rest else outcome], value
            )
        yield deliveries

        backlog = GaugeMetricFamily("partnersync_backlog", "Work waiting", labels=["what"])
        backlog.add_metric(["rq_queued"], queued)
        backlog.add_metric(["rq_started"], started)
        backlog.add_metric(["entities_due"], due)
        backlog.add_metric(["entities_pending"], dirty)
        backlog.add_metric(["drain_jobs_live"], drainers)
        yield backlog
        yield GaugeMetricFamily(
            "partnersync_rq_failed_jobs", "RQ jobs in the failed registry", value=failed
        )
        yield GaugeMetricFamily("partnersync_dlq_size", "Dead letters kept", value=dead)
        yield GaugeMetricFamily(
            "partnersync_attention", "Entities whose final state needs a human", value=attention
        )

        jobs = CounterMetricFamily(
            "partnersync_reconciles", "Entity reconciles by outcome", labels=["outcome"]
        )
        for outcome, value in _decode(outcomes).items():
            jobs.add_metric([outcome], value)
        yield jobs

        lat = _decode(latency)
        cumulative, buckets = 0.0, []
        for le in RECONCILE_BUCKETS:
            cumulative += lat.get(str(le), 0)
            buckets.append((str(le), cumulative))
        cumulative += lat.get("+Inf", 0)
        buckets.append(("+Inf", cumulative))
        yield HistogramMetricFamily(
            "partnersync_event_to_store_seconds", "From receiving an event to its entity's state stored",
            buckets=buckets, sum_value=lat.get("sum", 0.0),
        )  # fmt: skip

        api = CounterMetricFamily(
            "partnersync_partner_calls", "Partner API calls", labels=["partner", "status"]
        )
        for name, value in _decode(calls).items():
            partner, _, status = name.partition(":")
            api.add_metric([partner, status], value)
        yield api

        lag = GaugeMetricFamily(
            "partnersync_clock_task_age_seconds",
            "Seconds since a clock task last ran",
            labels=["task"],
        )
        for task, last in _decode(clock).items():
            lag.add_metric([task], max(0.0, (now - last) / 1000))
        yield lag

        commands = GaugeMetricFamily(
            "partnersync_commands", "Journaled commands by state", labels=["state"]
        )
        for state, value in _decode(command_states).items():
            commands.add_metric([state], value)
        yield commands

        entities = GaugeMetricFamily(
            "partnersync_entities", "Stored entities", labels=["partner", "kind", "status"]
        )
        for name, value in _decode(entity_counts).items():
            partner, kind, status = name.split(":", 2)
            if value:
                entities.add_metric([partner, kind, status], value)
        yield entities

        yield from _rate_limits(_decode(rates))

        recheck = CounterMetricFamily(
            "partnersync_rechecks", "Re-fetches of unchanged watched entities (stale sweep)",
            labels=["partner"],
        )  # fmt: skip
        for partner, n in _decode(rechecks).items():
            recheck.add_metric([partner], n)
        yield recheck
        yield GaugeMetricFamily(
            "partnersync_watched", "Non-terminal entities still re-fetched when unchanged",
            value=watched,
        )  # fmt: skip

        yield from _endpoints(self.connection)

        for partner_metrics in self.partners:
            yield from partner_metrics(self.connection, now)


def _rate_limits(counts: dict[str, float]) -> Iterator[Metric]:
    """The shared partner budgets' use (partnersync/ratelimit.py): requests that waited for
    a slot, and 429s that named a spent dimension (every process then backs off)."""
    waited = CounterMetricFamily(
        "partnersync_rate_limit_waits", "Partner requests that waited for the shared budget",
        labels=["partner"],
    )  # fmt: skip
    spent = CounterMetricFamily(
        "partnersync_rate_limit_spent", "429s from a partner naming a spent dimension",
        labels=["partner", "dimension"],
    )  # fmt: skip
    for name, value in counts.items():
        partner, _, what = name.partition(":")
        if what == "waited":
            waited.add_metric([partner], value)
        elif what.startswith("spent:"):
            spent.add_metric([partner, what.removeprefix("spent:")], value)
    yield waited
    yield spent


def _endpoints(connection: redis.Redis) -> Iterator[Metric]:
    """/metrics per endpoint (labels: endpoint ids, a handful): state, lag, attempts by
    outcome (`delivered`, `http_<status>`, `timeout`, `error`, `dead_lettered`), and the
    change-to-delivery histogram."""
    found = endpoints.listed(connection)
    state = outbound.Outbox(connection, lease_ms=0, attempts=0).state([e.id for e in found])
    pipe = connection.pipeline(transaction=False)
    pipe.hgetall(keys.OUT_COUNTS)
    pipe.hgetall(keys.OUT_LAG)
    counts, lags = pipe.execute()
    gauges = {
        "disabled": ("partnersync_endpoint_disabled", "1 while an endpoint is disabled"),
        "lag": ("partnersync_endpoint_lag_seconds",
                "Age of the oldest change not yet delivered to the endpoint (dead letters apart)"),
        "waiting": ("partnersync_endpoint_waiting", "Entities with changes queued for the endpoint"),
        "dead": ("partnersync_endpoint_dead_letters", "The endpoint's dead letters"),
    }  # fmt: skip
    families = {k: GaugeMetricFamily(n, h, labels=["endpoint"]) for k, (n, h) in gauges.items()}
    known = set()
    for e in found:
        known.add(e.id)
        s = state[e.id]
        families["disabled"].add_metric([e.id], 1.0 if e.disabled else 0.0)
        families["lag"].add_metric([e.id], s.lag_s)
        families["waiting"].add_metric([e.id], s.waiting)
        families["dead"].add_metric([e.id], s.dead)
    yield from families.values()
    attempts = CounterMetricFamily(
        "partnersync_endpoint_attempts", "Delivery attempts to endpoints, by outcome",
        labels=["endpoint", "outcome"],
    )  # fmt: skip
    trimmed = 0.0
    for name, value in counts.items():
        ep, _, outcome = replies.text(name).rpartition(":")
        if ep == "router":
            trimmed += float(value)
        elif ep in known:
            attempts.add_metric([ep, outcome], float(value))
    yield attempts
    yield CounterMetricFamily(
        "partnersync_outbound_trimmed", "Times changes left the stream before they were routed",
        value=trimmed,
    )  # fmt: skip
    per: dict[str, dict[str, float]] = {}
    for name, value in lags.items():
        ep, _, le = replies.text(name).rpartition(":")
        per.setdefault(ep, {})[le] = float(value)
    histogram = HistogramMetricFamily(
        "partnersync_endpoint_delivery_lag_seconds", "From a change's write to its delivery",
        labels=["endpoint"],
    )  # fmt: skip
    for ep, got in per.items():
        if ep not in known:
            continue
        cumulative, buckets = 0.0, []
        for le in (*(str(x) for x in outbound.LAG_BUCKETS), "+Inf"):
            cumulative += got.get(le, 0.0)
            buckets.append((le, cumulative))
        histogram.add_metric([ep], buckets, sum_value=got.get("sum", 0.0))
    yield histogram
