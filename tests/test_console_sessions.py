"""Console sessions as an operator expects them (#39 item 5), over real HTTP to a console
process: logout revokes the session (a copied cookie opens nothing), failed sign-ins are
audited and throttled, a user added while it runs signs in at once, and a viewer sees no
server file paths."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis

from cli.redisserver import RedisServer, free_port
from console import users
from partnersync import dlq, keys
from tests.conftest import Proc, base_env, wait_http

OPERATOR, VIEWER = ("ops", "ops-password-1"), ("viewer", "viewer-password-1")


@pytest.fixture
def console(redis_server: RedisServer, r: redis.Redis, tmp_path: Path) -> Iterator[dict]:
    path = tmp_path / "users"
    users.add(path, OPERATOR[0], "operator", OPERATOR[1])
    users.add(path, VIEWER[0], "viewer", VIEWER[1])
    port = free_port()
    env = base_env(redis_server.url, PARTNERSYNC_CONSOLE_SECRET="test-" + uuid.uuid4().hex,
                   PARTNERSYNC_CONSOLE_USERS=str(path), PARTNERSYNC_CONSOLE_SECURE_COOKIES="false")  # fmt: skip
    proc = Proc("console", ["console", "--port", str(port)], env).start()
    try:
        wait_http(f"http://127.0.0.1:{port}/login")
        yield {"url": f"http://127.0.0.1:{port}", "users": path}
    finally:
        proc.kill()


def sign_in(client: httpx.Client, name: str, password: str) -> httpx.Response:
    form = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    return client.post("/login", data={"name": name, "password": password, "csrf": csrf[1],
                                       "next": "/dlq"})  # fmt: skip


def csrf_of(client: httpx.Client, page: str = "/dlq") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(page).text)
    assert found is not None
    return found[1]


def test_logout_revokes_a_copied_session_cookie(console: dict) -> None:
    with httpx.Client(base_url=console["url"]) as browser:
        assert sign_in(browser, *OPERATOR).status_code == 303
        copied = dict(browser.cookies)
        assert browser.get("/dlq").status_code == 200
        assert browser.post("/logout", data={"csrf": csrf_of(browser)}).status_code == 303
    with httpx.Client(base_url=console["url"], cookies=copied) as thief:
        after = thief.get("/dlq")
        assert after.status_code == 303 and after.headers["location"].startswith("/login")


def test_failed_sign_ins_are_audited_and_throttled(console: dict, r: redis.Redis) -> None:
    with httpx.Client(base_url=console["url"]) as browser:
        answers = [sign_in(browser, OPERATOR[0], f"wrong-{n}").status_code for n in range(5)]
        assert answers == [401] * 5
        throttled = sign_in(browser, *OPERATOR)  # even the right password, for a while
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
        assert "too many failed sign-ins" in throttled.text
    failed = [e for _, e in r.xrange(keys.AUDIT) if e[b"action"] == b"login-failed"]
    assert len(failed) == 5 and all(e[b"user"] == b"ops" for e in failed)
    assert not any(b"wrong-" in v for e in failed for v in e.values())  # no password logged
    with httpx.Client(base_url=console["url"]) as other:  # another name, from the same place
        assert sign_in(other, *VIEWER).status_code == 429  # the address is throttled too


def test_a_user_added_while_it_runs_signs_in_at_once(console: dict) -> None:
    users.add(console["users"], "newcomer", "viewer", "newcomer-password")
    with httpx.Client(base_url=console["url"]) as browser:
        assert sign_in(browser, "newcomer", "newcomer-password").status_code == 303
        assert browser.get("/dlq").status_code == 200


def test_a_viewer_sees_no_traceback(console: dict, r: redis.Redis) -> None:
    pipe = r.pipeline()
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        dlq.dead_letter(pipe, "tradevest:transfer:t-1", exc, 3, datetime.now(UTC), 3600)
    pipe.execute()
    (letter,) = dlq.all_letters(r)
    assert "test_console_sessions.py" in letter.traceback
    with httpx.Client(base_url=console["url"]) as viewer:
        sign_in(viewer, *VIEWER)
        page = viewer.get(f"/dlq/{letter.id}")
        assert page.status_code == 200 and "RuntimeError: boom" in page.text
        assert "Traceback" not in page.text and "/tests/" not in page.text
    with httpx.Client(base_url=console["url"]) as operator:
        sign_in(operator, *OPERATOR)
        assert "test_console_sessions.py" in operator.get(f"/dlq/{letter.id}").text
