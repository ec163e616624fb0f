"""`partnersync run` as a newcomer meets it (#19), through the installed console script:
busy ports are refused with a message before anything starts; what `run` set up is in a
private var/run.env that the commands of a second terminal in the same directory use
without flags; the embedded Redis keeps its port across restarts."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from cli.redisserver import free_port
from cli.supervisor import SANDBOX_PORT
from partnersync import keys
from partnersync.config import run_state
from sandbox import tradevest as sandbox_tradevest
from tests.conftest import ROOT, wait_for

SCRIPT = str(Path(sys.executable).parent / "partnersync")


def clean_env(**extra: str) -> dict[str, str]:
    """A newcomer's shell: none of the project's variables set."""
    prefixes = ("PARTNERSYNC_", "TRADEVEST_", "SAXO_", "REDIS_URL", "PORT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(PYTHONPATH=str(ROOT), LOG_LEVEL="WARNING", **extra)
    return env


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *args], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=60
    )


class Run:
    def __init__(self, cwd: Path, port: int):
        self.cwd = cwd
        self.out = cwd / f"run-{port}.log"
        self.proc = subprocess.Popen(
            [SCRIPT, "run"], cwd=cwd, env=clean_env(PORT=str(port)),
            stdout=self.out.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_running(self) -> None:
        def up() -> bool:
            assert self.proc.poll() is None, self.out.read_text()
            return "partnersync is running" in self.out.read_text()

        wait_for(up, timeout=90, what="partnersync run to start")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=90)


@pytest.fixture
def sandbox_port_free() -> None:
    from cli.redisserver import port_free

    if not port_free(SANDBOX_PORT):
        pytest.skip(f"port {SANDBOX_PORT} (run's sandbox) is taken on this machine")


def run_on_a_busy_port(cwd: Path) -> tuple[int, subprocess.CompletedProcess[str]]:
    """`run` whose receiver port another process holds: (that port, what run did)."""
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        done = subprocess.run(
            [SCRIPT, "run", "--no-sandbox"], cwd=cwd,
            env=clean_env(PORT=str(port), REDIS_URL="redis://127.0.0.1:1/0"),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    return port, done


def test_run_refuses_a_busy_receiver_port(tmp_path: Path) -> None:
    port, done = run_on_a_busy_port(tmp_path)
    assert done.returncode == 1, done.stderr
    assert f"port {port} on 127.0.0.1 (receiver) is already in use" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "var" / "run.env").exists()


def test_a_refused_second_run_leaves_the_first_ones_settings(tmp_path: Path) -> None:
    """#39: the first `run`'s var/run.env is its own; a second run that cannot start must
    not delete it (every second-terminal command would then lose its Redis)."""
    state = tmp_path / "var" / "run.env"
    state.parent.mkdir()
    state.write_text("REDIS_URL=redis://127.0.0.1:6390/0\n")
    _, done = run_on_a_busy_port(tmp_path)
    assert done.returncode == 1, done.stderr
    assert state.read_text() == "REDIS_URL=redis://127.0.0.1:6390/0\n"


FIXTURES = {
    "naturalPersonId": sandbox_tradevest.NATURAL_PERSON_ID,
    "customerId": sandbox_tradevest.CUSTOMER_ID,
    "balanceAccountId": sandbox_tradevest.BALANCE_ACCOUNT_ID,
}


def test_a_second_terminal_gets_runs_settings(tmp_path: Path, sandbox_port_free: None) -> None:
    port = free_port()
    run = Run(tmp_path, port)
    try:
        run.wait_running()
        state = tmp_path / "var" / "run.env"
        assert stat.S_IMODE(state.stat().st_mode) == 0o600
        assert "var/run.env" in run.out.read_text()
        shared = run_state(tmp_path)
        assert shared["TRADEVEST_WEBHOOK_SECRETS"].startswith("dev-")
        assert shared["PARTNERSYNC_PUBLIC_URL"] == f"http://127.0.0.1:{port}"
        redis_port = int(shared["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
        # the README's commands, no flags: secrets, Saxo keys and Redis come from run.env
        for args in (
            ("register-webhooks", "--check"),
            ("report", "unsettled"),
            ("reconcile", "transactions", "--from", "2026-01-01", "--to", "2026-01-02"),
            ("status",),
        ):
            done = cli(tmp_path, *args)
            assert done.returncode == 0, (args, done.stdout, done.stderr)
            assert "Traceback" not in done.stderr
        # the sandbox's fixtures, made before the webhooks were registered, were backfilled
        assert "entities marked due" in run.out.read_text()
        for fixture in ("naturalPersonId", "customerId", "balanceAccountId"):
            found = cli(tmp_path, "entities", "find", FIXTURES[fixture])
            assert found.returncode == 0 and "tradevest:" in found.stdout, (fixture, found.stdout)
        # a dashboard stays connected: Redis closes it at stop, and that socket lingers in
        # FIN-WAIT on Redis's port while the dashboard has not noticed
        dashboard = socket.create_connection(("127.0.0.1", redis_port))
        marker = redis.Redis(port=redis_port)
        marker.set("left-by-the-first-run", 1)
        marker.close()
    finally:
        rc = run.stop()
    assert rc == 0, run.out.read_text()
    assert not state.exists()

    # restarted at once: the embedded Redis keeps its port, the dashboard can reconnect
    again = Run(tmp_path, port)
    try:
        again.wait_running()
        assert run_state(tmp_path)["REDIS_URL"] == f"redis://127.0.0.1:{redis_port}/0"
        # the sandbox started empty, and so did the mirror (said plainly): nothing of the
        # last run's entities is left to be swept into the dead-letter queue
        assert "the embedded Redis was emptied too" in again.out.read_text()
        fresh = redis.Redis(port=redis_port)
        assert fresh.get("left-by-the-first-run") is None and fresh.zcard(keys.DLQ) == 0
        for fixture in ("naturalPersonId", "customerId"):  # backfilled again
            assert "tradevest:" in cli(tmp_path, "entities", "find", FIXTURES[fixture]).stdout
        fresh.close()
    finally:
        dashboard.close()
        again.stop()


@pytest.mark.long  # about 90 s: `make chaos`
def test_the_suite_passes_with_run_up_in_the_same_checkout(
    tmp_path: Path, sandbox_port_free: None
) -> None:
    """#39: the README's two commands side by side. With `run` up in a checkout (its
    var/run.env naming its Redis, Tradevest auth URL and console users), the suite started
    from a second terminal in that checkout uses its own parts only (it failed with the
    run's token URL and users before)."""
    import shutil

    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".venv", "var", ".git", "__pycache__", ".*_cache", "docs"))  # fmt: skip
    run = Run(checkout, free_port())
    try:
        run.wait_running()
        assert (checkout / "var" / "run.env").exists()
        env = clean_env()
        env["PYTHONPATH"] = str(checkout)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/test_commands.py::test_command_is_accepted_and_its_story_told",
             "tests/test_console_sessions.py"],
            cwd=checkout, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        assert " passed" in done.stdout and "failed" not in done.stdout
    finally:
        run.stop()
