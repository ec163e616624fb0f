"""What a process takes from a `partnersync run` in its directory (var/run.env): everything
its environment does not set, unless the environment names its own system (#39 item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from partners.tradevest.settings import TradevestSettings
from partnersync import config

RUN_ENV = (
    "REDIS_URL=redis://127.0.0.1:6390/0\n"
    "TRADEVEST_BASE_URL=http://127.0.0.1:8900/tradevest\n"
    "TRADEVEST_AUTH_URL=http://127.0.0.1:8900/tradevest/oauth2/token\n"
    "TRADEVEST_WEBHOOK_SECRETS=dev-run-secret\n"
    "PARTNERSYNC_CONSOLE_USERS=/somewhere/var/console-users\n"
)


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "run.env").write_text(RUN_ENV)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_second_terminal_takes_the_runs_settings(running: Path) -> None:
    s = config.load({})
    tradevest = TradevestSettings.of(s)
    assert s.redis_url == "redis://127.0.0.1:6390/0"
    assert tradevest.token_url == "http://127.0.0.1:8900/tradevest/oauth2/token"
    assert tradevest.webhook_secrets == ("dev-run-secret",)
    assert s.console_users == "/somewhere/var/console-users"


def test_an_environment_with_its_own_redis_takes_nothing_from_a_run(running: Path) -> None:
    """The suite beside `make run`: its processes name their own Redis and partners."""
    s = config.load({"REDIS_URL": "redis://127.0.0.1:7000/0",
                     "TRADEVEST_BASE_URL": "http://127.0.0.1:9999/tradevest"})  # fmt: skip
    tradevest = TradevestSettings.of(s)
    assert tradevest.token_url == "http://127.0.0.1:9999/tradevest/oauth2/token"
    assert tradevest.webhook_secrets == () and s.console_users is None


def test_a_partner_variable_set_here_takes_none_of_that_partners_from_the_run(
    running: Path,
) -> None:
    """Only TRADEVEST_BASE_URL set: Redis still comes from the run, Tradevest's auth URL
    and secrets do not (they belong to the run's Tradevest, not this one)."""
    s = config.load({"TRADEVEST_BASE_URL": "http://127.0.0.1:9999/tradevest"})
    tradevest = TradevestSettings.of(s)
    assert s.redis_url == "redis://127.0.0.1:6390/0"
    assert tradevest.token_url == "http://127.0.0.1:9999/tradevest/oauth2/token"
    assert tradevest.webhook_secrets == ()
