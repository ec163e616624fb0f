"""The workers' HTTP transport: a stale keep-alive connection is still noticed, requests
work over real HTTP, and environment proxies still win."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import httpcore
import httpx
import pytest

from partnersync import transport
from tests.conftest import ROOT

LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4)
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@pytest.fixture
def no_proxies(monkeypatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_is_readable_follows_the_socket() -> None:
    ours, theirs = socket.socketpair()
    try:
        assert not transport.is_readable(ours)
        theirs.sendall(b"x")
        assert transport.is_readable(ours)
        ours.recv(1)
        theirs.close()  # the server hung up: the next recv returns b"" at once
        assert transport.is_readable(ours)
    finally:
        ours.close()
    assert transport.is_readable(None)


def test_the_pool_runs_on_the_backend(no_proxies) -> None:
    http = transport.transport(LIMITS)
    assert http is not None
    pool = http._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    assert isinstance(pool._network_backend, transport.Backend)  # httpx's layout still holds


def test_environment_proxies_keep_httpx_default(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert transport.transport(LIMITS) is None


def test_keep_alive_requests_and_a_server_side_close(sandbox_url: str, no_proxies) -> None:

    async def main() -> list[int]:
        async with httpx.AsyncClient(transport=transport.transport(LIMITS)) as http:
            statuses = [
                r.status_code
                for r in await asyncio.gather(
                    *(http.get(sandbox_url + "/_sandbox/ledger") for _ in range(12))
                )
            ]
            # a connection the server closed is dropped from the pool, not reused
            closing = await http.get(
                sandbox_url + "/_sandbox/ledger", headers={"Connection": "close"}
            )
            statuses.append(closing.status_code)
            statuses.append((await http.get(sandbox_url + "/_sandbox/ledger")).status_code)
            return statuses

    assert asyncio.run(main()) == [200] * 14


def test_connection_refused_is_httpx_error(no_proxies) -> None:
    from cli.redisserver import free_port

    async def main() -> None:
        async with httpx.AsyncClient(transport=transport.transport(LIMITS)) as http:
            await http.get(f"http://127.0.0.1:{free_port()}/")

    with pytest.raises(httpx.ConnectError):
        asyncio.run(main())


def _silent_server() -> tuple[socket.socket, int]:
    """A server that takes a request and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    return listener, listener.getsockname()[1]


@pytest.mark.parametrize("create", [True, False])
def test_a_create_without_an_answer_is_aborted_at_the_socket(no_proxies, create: bool) -> None:
    """A create whose answer does not come is closed with RST (SO_LINGER 0): the kernel
    drops what it has not delivered instead of retransmitting it into a partition that
    may heal after a successor looked up (#34). Other requests close politely (FIN)."""
    listener, port = _silent_server()

    async def request() -> None:
        http = transport.transport(LIMITS)
        async with httpx.AsyncClient(transport=http, timeout=0.3) as client:
            token = transport.send_deadline.set(1e12 if create else None)
            try:
                with pytest.raises(httpx.ReadTimeout):
                    await client.post(f"http://127.0.0.1:{port}/create", content=b"{}")
            finally:
                transport.send_deadline.reset(token)

    try:
        asyncio.run(request())
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            assert _whole_request(conn).startswith(b"POST /create")
            if create:
                with pytest.raises(ConnectionResetError):
                    conn.recv(1)
            else:
                assert conn.recv(1) == b""  # an orderly FIN
    finally:
        listener.close()


def _whole_request(conn: socket.socket) -> bytes:
    """The request, body `{}` included: headers and body may come in two segments, and
    bytes still queued are read before a reset is reported."""
    received = b""
    while not received.endswith(b"\r\n\r\n{}"):
        chunk = conn.recv(65536)
        assert chunk, received
        received += chunk
    return received


KILLED_MID_CREATE = """
import asyncio, sys, httpx
from partnersync import transport

async def main():
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(transport=transport.transport(limits), timeout=60) as client:
        transport.send_deadline.set(1e12)
        await client.post(sys.argv[1], content=b"{}")

asyncio.run(main())
"""


def test_a_worker_killed_mid_create_leaves_nothing_to_deliver(no_proxies) -> None:
    """A worker SIGKILLed while its create waits for the answer: the kernel closes its
    socket, and since the create's first write that close is an abort (RST), not a FIN
    behind bytes a partition may still hold."""
    listener, port = _silent_server()
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_CREATE, f"http://127.0.0.1:{port}/create"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    try:
        listener.settimeout(30)
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(30)
            assert _whole_request(conn).startswith(b"POST /create")
            child.kill()
            child.wait(10)
            with pytest.raises(ConnectionResetError):
                conn.recv(1)
    finally:
        child.kill()
        listener.close()
