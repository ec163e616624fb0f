"""Header authentication: exact match against any configured secret."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from receiver.auth import HeaderAuth


def test_any_configured_secret_passes_for_rotation() -> None:
    auth = HeaderAuth("api-key", ["old-secret", "new-secret"])
    assert auth.check({"api-key": "old-secret"})
    assert auth.check({"api-key": "new-secret"})
    assert not auth.check({"api-key": "other"})
    assert not auth.check({})


def test_no_secret_configured_refuses_everything() -> None:
    assert not HeaderAuth("api-key", []).check({"api-key": ""})


@given(st.text(min_size=1, max_size=40), st.text(max_size=40))
def test_only_the_exact_secret_passes(secret: str, presented: str) -> None:
    auth = HeaderAuth("api-key", [secret])
    assert auth.check({"api-key": presented}) == (presented == secret)
