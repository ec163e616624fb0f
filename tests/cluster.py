"""A Redis primary, its replicas and three Sentinels, started here on loopback (the
failover tests and the chaos suite's failover run)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis

from cli import process
from cli.redisserver import RedisServer, find_binary, free_port
from tests.conftest import wait_for

MASTER = "partnersync"


class Sentinel:
    def __init__(self, directory: Path, port: int, primary_port: int):
        self.directory, self.port = directory, port
        directory.mkdir(parents=True)
        self.conf = directory / "sentinel.conf"
        self.conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
            f"logfile {directory / 'sentinel.log'}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n"
            # 3 s: on a 2-core machine running the suite, a primary busy with a full sync to a
            # re-attached replica can miss 1 s of pings, and a second failover followed
            f"sentinel down-after-milliseconds {MASTER} 3000\n"
            f"sentinel failover-timeout {MASTER} 10000\n"
        )
        self.proc = subprocess.Popen(
            [find_binary(), str(self.conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def primary_port(self) -> int | None:
        try:
            reply = redis.Redis(port=self.port, socket_timeout=1).execute_command(
                "SENTINEL", "get-master-addr-by-name", MASTER
            )
        except redis.RedisError:
            return None
        return int(reply[1]) if reply else None


class Cluster:
    """`replica` is the first replica; `others` the rest (`replicas` in all)."""

    def __init__(self, directory: Path, replicas: int = 1):
        self.primary = RedisServer(directory / "a", free_port())
        self.primary.start(extra=["--repl-diskless-sync-delay", "0"])
        self.replicas = [
            RedisServer(directory / f"replica{i}", free_port()) for i in range(replicas)
        ]
        self.replica, self.others = self.replicas[0], self.replicas[1:]
        for replica in self.replicas:
            replica.start(extra=["--replicaof", "127.0.0.1", str(self.primary.port)])
        self.sentinels = [
            Sentinel(directory / f"s{i}", free_port(), self.primary.port) for i in range(3)
        ]
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        self.url = f"redis+sentinel://{hosts}/{MASTER}/0"
        wait_for(self.replicated, what="replica in sync")
        wait_for(lambda: all(s.primary_port() for s in self.sentinels), what="sentinels up")

    def replicated(self) -> bool:
        info = redis.Redis(port=self.primary.port).info("replication")
        n = len(self.replicas)
        online = [info.get(f"slave{i}", {}).get("state") == "online" for i in range(n)]
        return info.get("connected_slaves") == n and all(online)

    def agreed_primary(self) -> int | None:
        """The primary's port once every Sentinel names the same one."""
        ports = {s.primary_port() for s in self.sentinels}
        return ports.pop() if len(ports) == 1 else None

    def stop(self) -> None:
        for s in self.sentinels:
            process.stop(s.proc, 5)
        for server in (self.primary, *self.replicas):
            server.stop()
