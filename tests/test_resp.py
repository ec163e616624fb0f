"""The receiver's pipelined Redis connection: RESP encoding, replies in order, scripts
reloaded after a restart, failures surfaced as redis-py's exceptions, and reconnection."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time

import hiredis
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from cli.redisserver import RedisServer, find_binary, free_port
from partnersync.resp import PipelinedConnection, pack, script_sha

ARG = st.one_of(st.binary(max_size=64), st.text(max_size=32), st.integers(-(2**63), 2**63 - 1))


def as_bytes(arg: bytes | str | int) -> bytes:
    return arg if isinstance(arg, bytes) else str(arg).encode()


@given(st.lists(ARG, min_size=1, max_size=12))
def test_pack_is_a_resp_array_of_the_arguments(args) -> None:
    reader = hiredis.Reader()
    reader.feed(pack(tuple(args)))
    assert reader.gets() == [as_bytes(a) for a in args]
    assert reader.gets() is False  # nothing left over


def run(coro):
    return asyncio.run(coro)


def test_concurrent_calls_get_their_own_replies_in_order(redis_server: RedisServer, r) -> None:
    async def main() -> list[object]:
        connection = PipelinedConnection(redis_server.url)
        try:
            await connection.execute("SET", "counter", 0)
            # 200 calls in flight at once on one socket
            return await asyncio.gather(
                *(connection.execute("INCR", "counter") for _ in range(200))
            )
        finally:
            await connection.aclose()

    assert run(main()) == list(range(1, 201))


def test_errors_are_redis_py_exceptions_and_the_connection_survives(
    redis_server: RedisServer, r
) -> None:
    async def main() -> object:
        connection = PipelinedConnection(redis_server.url)
        try:
            await connection.execute("SET", "text", "x")
            with pytest.raises(ResponseError, match="WRONGTYPE"):
                await connection.execute("LPUSH", "text", "y")
            return await connection.execute("GET", "text")
        finally:
            await connection.aclose()

    assert run(main()) == b"x"


def test_script_is_loaded_again_when_redis_forgot_it(redis_server: RedisServer, r) -> None:
    script = "return ARGV[1] .. '!'"

    async def main() -> list[object]:
        connection = PipelinedConnection(redis_server.url)
        try:
            first = await connection.evalsha(script, "a")
            r.script_flush()  # what a restart does
            second = await connection.evalsha(script, "b")
            return [first, second]
        finally:
            await connection.aclose()

    assert run(main()) == [b"a!", b"b!"]
    assert r.script_exists(script_sha(script)) == [True]


def test_a_script_with_a_command_behind_it_and_noscript(redis_server: RedisServer, r) -> None:
    """`then` rides on the script's connection (WAIT counts that connection's writes), also
    when the script had to be sent again."""
    script = "redis.call('SET', KEYS[1], ARGV[1]) return 1"

    async def main() -> list[object]:
        connection = PipelinedConnection(redis_server.url)
        try:
            first = await connection.evalsha(script, "x", keys=["k"], then=(b"WAIT", 0, 10))
            r.script_flush()
            second = await connection.evalsha(script, "y", keys=["k"], then=(b"GET", "k"))
            return [first, second]
        finally:
            await connection.aclose()

    assert run(main()) == [(1, 0), (1, b"y")]


def test_a_demoted_primary_drops_the_connection(tmp_path) -> None:
    """READONLY (a failover turned the server into a replica): the call fails and the next
    one connects again, which with Sentinels asks them for the new primary."""
    server = RedisServer(tmp_path / "redis", free_port())
    server.start()
    try:

        async def main() -> None:
            connection = PipelinedConnection(server.url)
            try:
                await connection.execute("SET", "k", "1")
                redis.Redis(port=server.port).replicaof("127.0.0.1", free_port())
                with pytest.raises(ResponseError, match="READONLY"):
                    await connection.execute("SET", "k", "2")
                protocol = connection._protocol
                assert protocol is not None and protocol.lost is not None
                redis.Redis(port=server.port).replicaof("NO", "ONE")
                assert await connection.execute("SET", "k", "3") == b"OK"
            finally:
                await connection.aclose()

        run(main())
    finally:
        server.stop()


def test_password_and_database_from_the_url(tmp_path) -> None:
    server = RedisServer(tmp_path / "redis", free_port())
    server.start()
    try:
        admin = redis.Redis(port=server.port)
        admin.config_set("requirepass", "s3cret")
        url = f"redis://:s3cret@127.0.0.1:{server.port}/3"

        async def main() -> None:
            connection = PipelinedConnection(url)
            try:
                await connection.execute("SET", "where", "db3")
            finally:
                await connection.aclose()
            wrong = PipelinedConnection(f"redis://:nope@127.0.0.1:{server.port}/3")
            with pytest.raises(ResponseError):
                await wrong.execute("PING")

        run(main())
        check = redis.Redis(port=server.port, password="s3cret", db=3)
        assert check.get("where") == b"db3"
        assert redis.Redis(port=server.port, password="s3cret", db=0).get("where") is None
    finally:
        server.stop()


def test_a_stalled_redis_times_out_and_a_restarted_one_is_reconnected(tmp_path) -> None:
    server = RedisServer(tmp_path / "redis", free_port())
    server.start()
    try:
        admin = redis.Redis(port=server.port)

        async def main() -> None:
            connection = PipelinedConnection(server.url, timeout=0.3)
            try:
                assert await connection.execute("PING") == b"PONG"
                admin.client_pause(1500)  # Redis holds every client's commands
                with pytest.raises(TimeoutError):
                    await connection.execute("SET", "k", "v")
                await asyncio.sleep(1.5)
                assert await connection.execute("PING") == b"PONG"  # a new connection
                server.kill()
                await asyncio.sleep(0.2)
                with pytest.raises(ConnectionError):
                    await connection.execute("PING")
                server.start()
                assert await connection.execute("PING") == b"PONG"
            finally:
                await connection.aclose()

        run(main())
    finally:
        server.stop()


def _tls_files(directory) -> dict[str, str]:
    """A throwaway CA and a server certificate for 127.0.0.1 (openssl's CLI)."""
    files = {name: str(directory / f"{name}.pem") for name in ("ca", "ca-key", "cert", "key")}
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=partnersync test CA", "-keyout", files["ca-key"], "-out", files["ca"]],
        check=True, capture_output=True,
    )  # fmt: skip
    csr = str(directory / "server.csr")
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", files["key"], "-out", csr],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "x509", "-req", "-in", csr, "-CA", files["ca"], "-CAkey", files["ca-key"],
         "-CAcreateserial", "-days", "1", "-extfile", str(ext), "-out", files["cert"]],
        check=True, capture_output=True,
    )  # fmt: skip
    return files


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI needed for the certs")
def test_tls_and_unix_socket_urls(tmp_path) -> None:
    files = _tls_files(tmp_path)
    tls_port, sock = free_port(), str(tmp_path / "redis.sock")
    server = subprocess.Popen(
        [find_binary(), "--port", "0", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--unixsocket", sock, "--tls-port", str(tls_port), "--tls-cert-file", files["cert"],
         "--tls-key-file", files["key"], "--tls-ca-cert-file", files["ca"],
         "--tls-auth-clients", "no", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if server.poll() is not None:
                pytest.skip(f"this redis-server has no TLS: {server.stdout.read()[-200:]!r}")
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

        async def main() -> list[object]:
            out = []
            for url in (
                f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={files['ca']}",
                f"unix://{sock}?db=2",
            ):
                connection = PipelinedConnection(url)
                try:
                    out.append(await connection.execute("ECHO", url[:6]))
                finally:
                    await connection.aclose()
            # an unknown CA is refused
            untrusted = PipelinedConnection(f"rediss://127.0.0.1:{tls_port}/0")
            with pytest.raises(ConnectionError):
                await untrusted.execute("PING")
            return out

        assert run(main()) == [b"rediss", b"unix:/"]
    finally:
        server.terminate()
        server.wait(10)
