"""The CLI answers bad input and closed pipes with a message and an exit code, never a
traceback (the newcomer's first commands)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, base_env


def run(*args: str, env: dict[str, str] | None = None, pipe_to_head: bool = False):
    environment = base_env("redis://127.0.0.1:1/0") | (env or {})
    command = [str(Path(sys.executable).parent / "partnersync"), *args]  # the console script
    if pipe_to_head:
        shell = " ".join(f"'{c}'" for c in command) + " | head -c 10"
        return subprocess.run(
            ["bash", "-o", "pipefail", "-c", shell], env=environment, cwd=ROOT,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    return subprocess.run(
        command, env=environment, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [("@/nonexistent/missing.json", "No such file or directory"), ("@/tmp", "Is a directory")],
)
def test_data_file_problems_are_messages(data: str, reason: str) -> None:
    done = run("command", "submit", "transfer", "--data", data)
    assert done.returncode == 2
    assert reason in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY=0: must be at least 1"),
        ("PORT", "70000", "PORT=70000: must be at most 65535"),
        ("PORT", "abc", "PORT='abc' is not a whole number"),
        ("TRADEVEST_BASE_URL", "notaurl", "TRADEVEST_BASE_URL='notaurl': not an http(s):// URL"),
        ("REDIS_URL", "foo://x", "REDIS_URL: scheme 'foo'"),
        ("REDIS_URL", "redis+sentinel://h:1", "REDIS_URL: expected redis+sentinel://"),
        ("PARTNERSYNC_HTTP_TIMEOUT_S", "-1", "PARTNERSYNC_HTTP_TIMEOUT_S=-1.0: must be at least"),
        ("PARTNERSYNC_ALLOWED_CIDRS", "10.0.0.300/8", "'10.0.0.300/8' is not an IP address"),
        ("PARTNERSYNC_MIN_REPLICAS", "-1", "PARTNERSYNC_MIN_REPLICAS=-1: must be at least 0"),
        ("PARTNERSYNC_DURABILITY", "maybe", "use fsync, none"),
        # every boolean is one (was: anything not true-like read as false, #39)
        ("PARTNERSYNC_CONSOLE_SECURE_COOKIES", "perhaps", "'perhaps' is not true or false"),
        # a partner's own variables, read by the same code (partners/saxo/settings.py)
        ("SAXO_AUTH", "magic", "SAXO_AUTH='magic': use static, code, certificate"),
        ("SAXO_RATE_LIMITS", "Session=fast", "SAXO_RATE_LIMITS='Session=fast'"),
        ("TRADEVEST_WEBHOOK_AUTH", "hmac", "use header, standard-webhooks"),
        # user handlers: a module that is not there (was: accepted, workers crash-looped, #39)
        ("PARTNERSYNC_HANDLERS", "nosuch.mod:x", "PARTNERSYNC_HANDLERS='nosuch.mod:x': no module"),
        ("PARTNERSYNC_HANDLERS", "a:b:c", "PARTNERSYNC_HANDLERS='a:b:c': use package.module"),
    ],
)
def test_settings_are_checked_at_start(variable: str, value: str, message: str) -> None:
    """One place reads and checks every variable: a message naming it, exit 2 (#19)."""
    done = run("config", env={variable: value})
    assert done.returncode == 2, done.stdout[-300:] + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_worker_pool_with_handlers_it_cannot_load_stops_once_with_the_reason() -> None:
    """The module is there, the attribute is not: the pool says so and exits 2 instead of
    restarting workers that die on it (#39)."""
    done = run("worker", "-n", "1", env={"PARTNERSYNC_HANDLERS": "json:nosuch"})
    assert done.returncode == 2, done.stdout[-300:] + done.stderr
    assert "PARTNERSYNC_HANDLERS='json:nosuch'" in done.stderr and "nosuch" in done.stderr
    assert "Traceback" not in done.stderr and "restarting" not in done.stderr


def test_bad_log_level_is_named() -> None:
    done = run("config", env={"LOG_LEVEL": "LOUD"})
    assert done.returncode == 2
    assert "LOG_LEVEL='LOUD'" in done.stderr and "Traceback" not in done.stderr


def test_version() -> None:
    done = run("--version")
    assert done.returncode == 0 and done.stdout.startswith("partnersync ")


def test_listing_piped_to_head_is_not_an_error() -> None:
    done = run("config", pipe_to_head=True)  # prints a long table; head keeps 10 bytes
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert done.returncode == 0, done.stderr


def test_ens_interval_is_read() -> None:
    from partners.saxo.settings import SaxoSettings
    from partnersync import config

    settings = config.load({"PARTNERSYNC_ENS_INTERVAL_S": "2.5"}, state_fallback=False)
    assert SaxoSettings.of(settings).ens_interval_s == 2.5


def test_a_kind_that_does_not_exist_names_the_known_ones() -> None:
    done = run("entities", "list", "--kind", "transfers")
    assert done.returncode == 2, done.stderr
    assert "unknown kind 'transfers'" in done.stderr and "transfer," in done.stderr


def test_redis_password_never_printed() -> None:
    done = run("status", env={"REDIS_URL": "redis://:topsecret@127.0.0.1:1/0"})
    assert done.returncode == 3, done.stderr
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in done.stderr
    assert "topsecret" not in done.stderr + done.stdout


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tables_fit_the_terminal_and_keep_whole_values_when_piped(monkeypatch) -> None:
    from cli.table import render

    key = "tradevest:transfer:" + "7" * 36
    stamp = "2026-01-01T10:00:00.123456+00:00"  # 32 characters
    rows = [(key, "PROCESSED", stamp, None)]
    monkeypatch.setenv("COLUMNS", "100")
    screen = Terminal()
    render(["KEY", "STATUS", "MODIFIED ON", "EXTERNAL ID"], rows, file=screen)
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in screen.getvalue().splitlines()]
    assert max(len(line) for line in lines) <= 100, lines
    assert any(key in line for line in lines), lines  # a key is never broken (#39)
    folded = "".join(lines)
    assert all(part in folded for part in (stamp[:10], stamp[-6:])), lines  # wrapped, not cut
    monkeypatch.setenv("COLUMNS", "80")  # the usual terminal: the key still in one piece
    narrow = Terminal()
    render(["KEY", "STATUS", "MODIFIED ON", "EXTERNAL ID"], rows, file=narrow)
    assert any(key in line for line in narrow.getvalue().splitlines())
    piped = io.StringIO()
    render(["KEY", "STATUS", "MODIFIED ON", "EXTERNAL ID"], rows, file=piped)
    body = piped.getvalue().splitlines()[1].split()
    assert body == [key, "PROCESSED", stamp, "-"]


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (
            ["entities", "find", "-FWuGEj6Sg6p2qoG4tu9kw==", "--json"],
            "id",
            "-FWuGEj6Sg6p2qoG4tu9kw==",
        ),  # noqa: E501
        (["entities", "find", "--json", "-x"], "id", "-x"),
        (["entities", "show", "saxo:signup:-Ab|c==", "--raw"], "key", "saxo:signup:-Ab|c=="),
        (["saxo", "complete", "-Q1w2e3r4t5y6u7i8o9p0A=="], "signup", "-Q1w2e3r4t5y6u7i8o9p0A=="),
        (["saxo", "pdf", "-K|x==", "-o", "a.pdf", "--type", "Switzerland501"], "signup", "-K|x=="),
        (["dlq", "show", "-1"], "id", "-1"),
    ],
)
def test_partner_keys_starting_with_a_dash_are_values(
    argv: list[str], field: str, value: str
) -> None:
    """Saxo's keys are base64 and may start with '-': such a key is the command's argument,
    not an unknown option, without the user having to know to write '--' first."""
    from cli import parser

    assert getattr(parser().parse_args(argv), field) == value


def test_unknown_options_are_still_refused() -> None:
    done = run("entities", "find", "abc", "--jsno")
    assert done.returncode == 2
    assert "unrecognized arguments: --jsno" in done.stderr, done.stderr
    alone = run("entities", "find", "--jsno")  # a mistyped long option is not taken as the id
    assert alone.returncode == 2 and "required: id" in alone.stderr, alone.stderr
    spaced = run("entities", "list", "--limit")
    assert spaced.returncode == 2 and "expected one argument" in spaced.stderr


def test_a_partners_commands_come_with_it() -> None:
    """`saxo …` is Saxo's package's (Partner.cli): there when Saxo is configured, unknown
    when it is not, and a broken configuration is still reported as such."""
    helped = run("saxo", "--help")
    assert helped.returncode == 0 and "attach" in helped.stdout
    without = run("saxo", "options", env={"PARTNERSYNC_PARTNERS": "partners.tradevest"})
    assert without.returncode == 2 and "invalid choice: 'saxo'" in without.stderr
    broken = run("saxo", "options", env={"PARTNERSYNC_LEASE_MS": "1"})
    assert broken.returncode == 2 and "PARTNERSYNC_LEASE_MS" in broken.stderr
    assert "Traceback" not in broken.stderr + without.stderr


def test_filters_naming_nothing_known_are_refused() -> None:
    """`dlq list --kind nosuch` printed nothing and exited 0 (#39 item 6)."""
    for args, named in ((("dlq", "list", "--kind", "nosuch"), "unknown kind 'nosuch'"),
                        (("dlq", "list", "--filter", "reason=whim"), "unknown reason 'whim'"),
                        (("dlq", "replay", "--all", "--kind", "nosuch"), "unknown kind")):  # fmt: skip
        done = run(*args)
        assert done.returncode == 2 and named in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_a_refresh_token_under_static_auth_is_refused_not_ignored() -> None:
    done = run("saxo", "auth", "--refresh-token", "r-1", env={"SAXO_TOKEN": "t"})
    assert done.returncode == 2 and "SAXO_AUTH=static" in done.stderr
