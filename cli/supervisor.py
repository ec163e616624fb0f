"""`partnersync run`: everything for local use, under one supervisor.

Start order: Redis → sandbox → receiver → workers → clock → webhook registration.
Ctrl-C (or SIGTERM) stops them in reverse order, each with a grace period; children die
with the supervisor even if it is killed (PR_SET_PDEATHSIG), so nothing is orphaned.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cli import process
from cli.process import child_preexec
from cli.redisserver import RedisServer, free_port
from partnersync.config import Settings

SANDBOX_PORT = 8900
EMBEDDED_REDIS_PORT = 6380


@dataclass
class Child:
    name: str
    command: list[str]
    url: str = ""
    proc: subprocess.Popen[bytes] | None = None


@dataclass
class Supervisor:
    settings: Settings
    sandbox: bool = True
    workers: int = 2
    root: Path = field(default_factory=Path.cwd)
    children: list[Child] = field(default_factory=list)
    redis: RedisServer | None = None

    def run(self) -> int:
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            env = self._start()
            self._register(env)
            self._print()
            while not stopping:
                for child in self.children:
                    assert child.proc is not None
                    if child.proc.poll() is not None:
                        print(
                            f"partnersync: {child.name} exited ({child.proc.returncode}); stopping"
                        )
                        stopping = True
                time.sleep(0.2)
        finally:
            self._stop()
        return 0

    def _start(self) -> dict[str, str]:
        env = dict(os.environ)
        state = self.root / "var" / "redis" / "url"
        if not self.settings.redis_url:
            self.redis = RedisServer(self.root / "var" / "redis", free_port(EMBEDDED_REDIS_PORT))
            self.redis.start()
            env["REDIS_URL"] = self.redis.url
            state.write_text(self.redis.url + "\n")
        else:
            env["REDIS_URL"] = self.settings.redis_url
        if not self.settings.tradevest_webhook_secrets:
            # A fresh secret for this run: the receiver accepts it, registration sends it.
            env["TRADEVEST_WEBHOOK_SECRETS"] = "dev-" + secrets.token_urlsafe(18)
        cli = [sys.executable, "-m", "partnersync"]
        receiver_url = f"http://{self.settings.host}:{self.settings.port}"
        if self.sandbox:
            sandbox_url = f"http://127.0.0.1:{SANDBOX_PORT}"
            env.setdefault("TRADEVEST_BASE_URL", sandbox_url + "/tradevest")
            env.setdefault("TRADEVEST_AUTH_URL", sandbox_url + "/tradevest/oauth2/token")
            env.setdefault("SAXO_BASE_URL", sandbox_url + "/saxo/openapi")
            env.setdefault("SAXO_TOKEN", "sandbox")
            env.setdefault("SAXO_CLIENT_KEY", "WLC-owner-key==")  # the sandbox's white-label owner
            env.setdefault("SAXO_FUNDING_ACCOUNT_KEY", "FUND-EUR-key==")
            self.children.append(
                Child("sandbox", [*cli, "sandbox", "--port", str(SANDBOX_PORT)], sandbox_url)
            )
        self.children += [
            Child("receiver", [*cli, "serve"], receiver_url),
            Child("workers", [*cli, "worker", "-n", str(self.workers)]),
            Child("clock", [*cli, "clock"]),
        ]
        for child in self.children:
            child.proc = subprocess.Popen(child.command, env=env, preexec_fn=child_preexec)
            if child.url:
                wait_http(
                    child.url + ("/_sandbox/faults" if child.name == "sandbox" else "/healthz")
                )
        return env

    def _register(self, env: dict[str, str]) -> None:
        if not self.sandbox:
            return
        receiver = next(c for c in self.children if c.name == "receiver")
        subprocess.run(
            [sys.executable, "-m", "partnersync", "register-webhooks", "--url", receiver.url],
            env=env,
            check=True,
        )

    def _print(self) -> None:
        print("partnersync is running (Ctrl-C stops everything):")
        print(
            f"  redis     {self.redis.url if self.redis else self.settings.redis_url}"
            + (" (embedded, AOF in var/redis)" if self.redis else "")
        )
        for child in self.children:
            where = child.url or f"pid {child.proc.pid if child.proc else '?'}"
            print(f"  {child.name:<9} {where}")
        print("  try: partnersync entities list   |   partnersync status", flush=True)

    def _stop(self) -> None:
        for child in reversed(self.children):
            process.stop(child.proc, timeout=35)  # the worker pool's grace is 30 s
        if self.redis is not None:
            self.redis.stop()
            state = self.root / "var" / "redis" / "url"
            if state.exists() and state.read_text().strip() == self.redis.url:
                state.unlink()
        print("partnersync: stopped", flush=True)


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f}s")
