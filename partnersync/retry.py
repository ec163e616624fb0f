"""The one retry policy: retried with backoff while attempts remain, else dead-lettered.

Reconcile and commands both ask `delay_ms`; None means "dead-letter it now".
"""

from __future__ import annotations

import random

from partnersync.config import Settings


def backoff_ms(attempt: int, schedule: tuple[float, ...], retry_after: float | None) -> int:
    """The schedule's delay for this attempt (the last repeats), jittered ±20% so retries
    of many entities do not arrive together; the partner's Retry-After is the floor."""
    delay = schedule[min(attempt, len(schedule) - 1)] * random.uniform(0.8, 1.2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return int(delay * 1000)


def delay_ms(
    settings: Settings, attempts: int, *, retryable: bool, retry_after: float | None = None
) -> int | None:
    """After `attempts` failed attempts: milliseconds until the next, or None (give up)."""
    if not retryable or attempts + 1 >= settings.max_attempts:
        return None
    return backoff_ms(attempts, settings.retry_schedule_s, retry_after)
