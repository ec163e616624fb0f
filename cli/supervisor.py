"""`partnersync run`: everything for local use, under one supervisor.

Start order: Redis → sandbox → receiver → workers → clock → console → webhook registration.
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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cli import process
from cli.process import child_preexec
from cli.redisserver import RedisServer, free_port, port_free
from partnersync import partner, redisurl
from partnersync.config import RUN_STATE, Settings, write_private

SANDBOX_PORT = 8900
CONSOLE_USERS = Path("var") / "console-users"
EMBEDDED_REDIS_PORT = 6380


class StartError(Exception):
    """`run` cannot start; the message says why and what to do."""


# What `run` sets up for the processes it starts, written to var/run.env (0600) for the
# commands of a second terminal (partnersync.config.run_state reads it), with each
# partner's (`shared`).
SHARED = ("REDIS_URL", "PARTNERSYNC_PUBLIC_URL", "PARTNERSYNC_CONSOLE_USERS")


def shared(partners: Iterable[partner.Partner]) -> tuple[str, ...]:
    """SHARED, and each partner's webhook secrets and the variables pointing it at its fake."""
    names = list(SHARED)
    for p in partners:
        if p.webhooks and p.webhooks.secrets_variable:
            names.append(p.webhooks.secrets_variable)
        names += p.sandbox_env("")
    return tuple(names)


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
    wrote_state: bool = False  # var/run.env is this run's (removed when it stops)
    first_password: str | None = None  # the console's first operator, when run made one

    def run(self) -> int:
        stopping = False
        failed = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            self._check_ports()
            env = self._start()
            self._register(env)
            self._print()
            while not stopping:
                for child in self.children:
                    assert child.proc is not None
                    if child.proc.poll() is not None:
                        print(
                            f"partnersync: {child.name} exited ({child.proc.returncode}); "
                            "stopping everything",
                            file=sys.stderr,
                        )
                        stopping = failed = True
                time.sleep(0.2)
        except StartError as exc:
            print(f"partnersync: run: {exc}", file=sys.stderr)
            failed = True
        finally:
            self._stop()
        return 1 if failed else 0

    def _check_ports(self) -> None:
        """Refuse busy ports before starting anything: a stranger on the receiver's port
        would otherwise get the webhook registration."""
        wanted = [
            (self.settings.host, self.settings.port, "receiver", "or set PORT"),
            (self.settings.console_host, self.settings.console_port, "console",
             "or set PARTNERSYNC_CONSOLE_PORT"),
        ]  # fmt: skip
        if self.sandbox:
            wanted.append(("127.0.0.1", SANDBOX_PORT, "sandbox", "or use --no-sandbox"))
        for host, port, name, hint in wanted:
            if not port_free(port, host):
                raise StartError(
                    f"port {port} on {host} ({name}) is already in use: stop what holds it ({hint})"
                )

    def _start(self) -> dict[str, str]:
        env = dict(os.environ)
        if not self.settings.redis_url:
            self.redis = RedisServer(self.root / "var" / "redis", free_port(EMBEDDED_REDIS_PORT))
            self.redis.start()
            env["REDIS_URL"] = self.redis.url
            if self.sandbox:
                self._reset(self.redis)
        else:
            env["REDIS_URL"] = self.settings.redis_url
        partners = partner.load(self.settings.partners).partners.values()
        for p in partners:
            variable = p.webhooks.secrets_variable if p.webhooks else None
            if variable and not env.get(variable):
                # A fresh secret for this run: the receiver accepts it, registration sends it.
                env[variable] = "dev-" + secrets.token_urlsafe(18)
        cli = [sys.executable, "-m", "partnersync"]
        receiver_url = f"http://{self.settings.host}:{self.settings.port}"
        env.setdefault("PARTNERSYNC_PUBLIC_URL", receiver_url)
        if self.sandbox:
            sandbox_url = f"http://127.0.0.1:{SANDBOX_PORT}"
            for p in partners:  # each partner's variables that point it at its fake
                for name, value in p.sandbox_env(sandbox_url).items():
                    env.setdefault(name, value)
            self.children.append(
                Child("sandbox", [*cli, "sandbox", "--port", str(SANDBOX_PORT)], sandbox_url)
            )
        self._console(env)
        self._write_state(env)
        console_url = f"http://{self.settings.console_host}:{self.settings.console_port}"
        self.children += [
            Child("receiver", [*cli, "serve"], receiver_url),
            Child("workers", [*cli, "worker", "-n", str(self.workers)]),
            Child("clock", [*cli, "clock"]),
            Child("console", [*cli, "console"], console_url),
        ]
        for child in self.children:
            child.proc = subprocess.Popen(child.command, env=env, preexec_fn=child_preexec)
            if child.url:
                path = {"sandbox": "/_sandbox/faults", "console": "/login"}.get(
                    child.name, "/healthz"
                )
                if not wait_http(child.url + path, child.proc):
                    code = child.proc.poll()
                    raise StartError(
                        f"{child.name} did not come up at {child.url}"
                        + (f" (exited {code}; its error is above)" if code is not None else "")
                    )
        return env

    def _reset(self, server: RedisServer) -> None:
        """The sandbox starts empty every run: a mirror kept from the last one would name
        entities it no longer has (its sweeps would dead-letter them again and again), so
        the embedded Redis starts empty too, and says so."""
        import redis

        connection = redis.Redis.from_url(server.url)
        try:
            held = connection.dbsize()
            if held:
                connection.flushall()
                print(f"partnersync: run: the sandbox starts empty, so the embedded Redis was "
                      f"emptied too ({held} keys of the last run; var/redis)", flush=True)  # fmt: skip
        finally:
            connection.close()

    def _console(self, env: dict[str, str]) -> None:
        """The console's session key (new each run: sessions end with it), its users file,
        and a first operator with a fresh password (printed; `console-user` changes it)."""
        from console import users

        env.setdefault("PARTNERSYNC_CONSOLE_SECRET", secrets.token_urlsafe(32))
        env.setdefault("PARTNERSYNC_CONSOLE_SECURE_COOKIES", "false")  # http://127.0.0.1
        path = Path(env.setdefault("PARTNERSYNC_CONSOLE_USERS", str(self.root / CONSOLE_USERS)))
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.first_password = secrets.token_urlsafe(12)
            users.add(path, "admin", "operator", self.first_password)

    @property
    def state_file(self) -> Path:
        return self.root / RUN_STATE

    def _write_state(self, env: dict[str, str]) -> None:
        """var/run.env, readable by this user only: it holds the webhook secret."""
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        lines = ["# written by `partnersync run` while it runs; read by the CLI here"]
        partners = partner.load(self.settings.partners).partners.values()
        lines += [f"{name}={env[name]}" for name in shared(partners) if env.get(name)]
        write_private(self.state_file, "\n".join(lines) + "\n")
        self.wrote_state = True

    def _register(self, env: dict[str, str]) -> None:
        if not self.sandbox:
            return
        receiver = next(c for c in self.children if c.name == "receiver")
        done = subprocess.run(
            [sys.executable, "-m", "partnersync", "register-webhooks", "--url", receiver.url],
            env=env,
        )
        if done.returncode != 0:
            raise StartError(f"registering the webhooks failed ({done.returncode}); see above")
        # what the sandbox held before the webhooks were registered (its fixtures), so the
        # local mirror matches the partner from the first minute
        done = subprocess.run(
            [sys.executable, "-m", "partnersync", "backfill", "--wait", "30"], env=env
        )
        if done.returncode != 0:
            print(f"partnersync: run: the backfill failed ({done.returncode}); the sandbox's "
                  "fixtures arrive only with their next change", file=sys.stderr)  # fmt: skip

    def _print(self) -> None:
        print("partnersync is running (Ctrl-C stops everything):")
        print(
            f"  redis     {self.redis.url if self.redis else redisurl.display(self.settings.redis_url or '')}"
            + (" (embedded, AOF in var/redis)" if self.redis else "")
        )
        for child in self.children:
            where = child.url or f"pid {child.proc.pid if child.proc else '?'}"
            print(f"  {child.name:<9} {where}")
        if self.first_password:
            print(f"  console   sign in as admin / {self.first_password} (written to "
                  f"{CONSOLE_USERS} as an argon2 hash; `partnersync console-user admin` changes it)")  # fmt: skip
        print(f"  settings  {self.state_file} (commands run here use them)")
        print("  try: partnersync entities list   |   partnersync status", flush=True)

    def _stop(self) -> None:
        for child in reversed(self.children):
            process.stop(child.proc, timeout=35)  # the worker pool's grace is 30 s
        if self.redis is not None:
            self.redis.stop()
        if self.wrote_state:  # a run refused at start leaves the running one's alone
            self.state_file.unlink(missing_ok=True)
        print("partnersync: stopped", flush=True)


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20.0) -> bool:
    """Whether `url` answers (below 500) within `timeout`; False at once if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False
