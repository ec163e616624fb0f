"""Saxo's figures on /metrics: ENS lag and the latest unsettled-amounts report.

Read from what the clock's Saxo tasks store (keys.py), by the engine's Redis collector
through the Partner interface.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import redis
from prometheus_client.core import GaugeMetricFamily, Metric

from partners.saxo import keys
from partnersync import replies


def collect(connection: redis.Redis, now_ms: int) -> Iterator[Metric]:
    ens_time, report = connection.mget([keys.ENS_LAST_TIME, keys.UNSETTLED])
    if ens_time:
        seen = datetime.fromisoformat(replies.text(ens_time)).timestamp() * 1000
        yield GaugeMetricFamily(
            "partnersync_ens_checkpoint_age_seconds", "Age of the last ENS activity taken in",
            value=max(0.0, (now_ms - seen) / 1000),
        )  # fmt: skip
    if report:
        yield from _unsettled(json.loads(report))


def _unsettled(report: dict) -> Iterator[Metric]:
    """The latest funding report: the amount, and what falls due in the next 7 days."""
    # a gauge: the amount goes up and down (a `_total` name would read as a counter)
    amount = GaugeMetricFamily(
        "partnersync_unsettled_amount",
        "Unsettled amount in the requester's currency (negative: owed)",
        labels=["currency"],
    )
    amount.add_metric([report["currency"]], float(report["total"]))
    yield amount
    due = GaugeMetricFamily(
        "partnersync_unsettled_due",
        "Unsettled amounts falling due in the next 7 days",
        labels=["currency", "value_date"],
    )
    today = date.today()
    for row in report["rows"]:
        when = row.get("valueDate")
        if when and today <= date.fromisoformat(when) <= today + timedelta(days=7):
            due.add_metric([row["currency"], when], float(row["amount"]))
    yield due
