"""The partner client base, fed the partners' documented answers."""

from __future__ import annotations

import httpx

from partnersync.client import retry_after


def answer(headers: dict[str, str]) -> httpx.Response:
    return httpx.Response(429, headers=headers)


def test_a_429_waits_for_the_exhausted_dimension_only() -> None:
    """Saxo sends one set of X-RateLimit-<dimension>-Limit/-Remaining/-Reset headers per
    dimension (developer.saxo rate-limiting; dimensions AppDay, Session, SessionOrders).
    The Session bucket is spent (resets in 17 s); AppDay has budget left and resets in
    12 hours: the retry comes in 17 s, not 12 hours (#35)."""
    headers = {
        "X-RateLimit-AppDay-Limit": "10000000",
        "X-RateLimit-AppDay-Remaining": "9999872",
        "X-RateLimit-AppDay-Reset": "43200",
        "X-RateLimit-Session-Limit": "120",
        "X-RateLimit-Session-Remaining": "0",
        "X-RateLimit-Session-Reset": "17",
    }
    assert retry_after(answer(headers)) == 17.0


def test_several_spent_dimensions_wait_for_the_last_to_reset() -> None:
    headers = {
        "X-RateLimit-Session-Remaining": "0",
        "X-RateLimit-Session-Reset": "17",
        "X-RateLimit-SessionOrders-Remaining": "0",
        "X-RateLimit-SessionOrders-Reset": "1",
    }
    assert retry_after(answer(headers)) == 17.0


def test_without_remaining_the_soonest_reset_and_else_retry_after() -> None:
    assert retry_after(answer({"X-RateLimit-A-Reset": "30", "X-RateLimit-B-Reset": "5"})) == 5.0
    assert retry_after(answer({"Retry-After": "12"})) == 12.0  # Tradevest
    assert retry_after(answer({})) is None
