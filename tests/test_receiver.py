"""The receiver over real HTTP: bad input refused with a JSON body, nothing enqueued;
duplicates absorbed; 503 (never 2xx) while Redis is down, recovery without a restart.
Tradevest's routes answer as platform-api-overview §3 documents: 200 OK, or a 4xx with an
ErrorMessage body."""

from __future__ import annotations

import uuid

import httpx
import msgspec
import pytest
import redis

from cli.redisserver import RedisServer, free_port
from partnersync import inbox, keys
from schemas.tradevest.errors import ErrorMessage
from tests.conftest import WEBHOOK_SECRET, Proc, base_env, wait_http

ROUTE = "/webhooks/tradevest/transfer-notification"


def body(
    transfer_id: str | None = None, status: str = "PENDING", modified: str = "2026-01-01T10:00:00Z"
) -> bytes:
    return (
        f'{{"transferId":"{transfer_id or uuid.uuid4()}","status":"{status}",'
        f'"modifiedOn":"{modified}","notificationType":"UPDATED"}}'
    ).encode()


def snapshot(r: redis.Redis) -> tuple[int, int, int, int]:
    return (
        inbox.count(r),
        r.llen("rq:queue:partnersync"),
        r.zcard(keys.DIRTY),
        len(list(r.scan_iter(keys.dedupe("*")))),
    )


def problem(response: httpx.Response) -> ErrorMessage:
    """A refusal's body, as Tradevest's ErrorMessage (message, responseType, requestId
    required): its errorCode is the receiver's reason."""
    assert response.headers["content-type"] == "application/json"
    return msgspec.json.decode(response.content, type=ErrorMessage)


def post(url: str, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    h = {"api-key": WEBHOOK_SECRET, "Content-Type": "application/json"}
    h.update(headers or {})
    return httpx.post(url, content=content, headers={k: v for k, v in h.items() if v is not None})


BAD = [
    pytest.param({"api-key": None}, body(), 401, "unauthorized", id="missing-auth"),
    pytest.param({"api-key": "wrong"}, body(), 401, "unauthorized", id="wrong-auth"),
    pytest.param(
        {"Content-Type": "text/plain"}, body(), 415, "unsupported_media_type", id="not-json"
    ),
    pytest.param(
        {}, b'{"transferId": "x"' + b" " * 300_000 + b"}", 413, "payload_too_large", id="too-large"
    ),
    pytest.param({}, b'{"transferId": ', 400, "malformed_body", id="truncated"),
    pytest.param(
        {}, b'{"status":"PENDING","notificationType":"UPDATED"}', 400, "invalid_body", id="no-id"
    ),
    pytest.param(
        {},
        body().replace(b'"transferId":"', b'"transferId":"zz'),
        400,
        "invalid_body",
        id="bad-uuid",
    ),
    pytest.param({}, b"\xff\xfe{}", 400, "malformed_body", id="invalid-utf8"),
]


@pytest.mark.parametrize("headers, content, status, error", BAD)
def test_bad_input_is_refused_and_nothing_is_stored(
    r: redis.Redis,
    receiver_url: str,
    headers: dict[str, str],
    content: bytes,
    status: int,
    error: str,
) -> None:
    before = snapshot(r)
    response = post(receiver_url + ROUTE, content, headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    refusal = problem(response)
    assert refusal.errorCode == error and refusal.message and refusal.responseType == "ERROR"
    assert snapshot(r) == before


def test_problem_names_the_field(receiver_url: str, r: redis.Redis) -> None:
    response = post(receiver_url + ROUTE, b'{"notificationType":"UPDATED"}')
    assert "transferId" in problem(response).message


def test_large_body_is_cut_off_while_streaming(receiver_url: str, r: redis.Redis) -> None:
    # No Content-Length (chunked): the limit applies while reading, not after.
    def chunks():
        for _ in range(100):
            yield b" " * 10_000

    response = httpx.post(
        receiver_url + ROUTE,
        content=chunks(),
        headers={"api-key": WEBHOOK_SECRET, "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_same_notification_three_times_is_accepted_once(receiver_url: str, r: redis.Redis) -> None:
    content = body()
    answers = [post(receiver_url + ROUTE, content) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["partnersync-outcome"] for a in answers] == [
        "accepted",
        "duplicate",
        "duplicate",
    ]
    assert len({a.headers["partnersync-delivery-id"] for a in answers}) == 1
    held, _, dirty, _ = snapshot(r)
    assert held == 1 and dirty == 1


def test_accepted_answer_is_200_naming_the_stored_delivery(
    receiver_url: str, r: redis.Redis
) -> None:
    content = body()
    response = post(receiver_url + ROUTE, content)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == "0"
    assert response.headers["partnersync-outcome"] == "accepted"
    stored = inbox.read(r, [response.headers["partnersync-delivery-id"]])[0]
    assert stored.body == content and stored.type == "TRANSFER_NOTIFICATION"


def test_webhook_routes_answer_json_for_wrong_method_and_path(receiver_url: str) -> None:
    wrong_method = httpx.get(receiver_url + ROUTE)
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["error"] == "method_not_allowed"
    nested = post(receiver_url + "/webhooks/tradevest/transfer-notification/extra", body())
    assert nested.status_code == 404 and problem(nested).errorCode == "unknown_route"
    elsewhere = post(receiver_url + "/webhooks/nosuch/transfer-notification", body())
    assert elsewhere.status_code == 404 and elsewhere.json()["error"] == "unknown_route"


def test_unknown_event_type_is_archived_and_parked(receiver_url: str, r: redis.Redis) -> None:
    response = post(receiver_url + "/webhooks/tradevest/brand-new-notification", b'{"fooId":"1"}')
    assert response.status_code == 200 and response.headers["partnersync-outcome"] == "parked"
    held, _, dirty, _ = snapshot(r)
    assert held == 1 and dirty == 0
    # counted under one bounded label; the inbox keeps the type as sent
    assert r.hget(keys.COUNTERS, "parked:OTHER") == b"1"
    assert r.hgetall(keys.LAST_DELIVERY).keys() == {b"OTHER"}
    stored = inbox.read(r, [response.headers["partnersync-delivery-id"]])[0]
    assert stored.type == "BRAND_NEW_NOTIFICATION"
    assert post(receiver_url + "/webhooks/tradevest/Bad..Path", b"{}").status_code == 404


def test_health_and_readiness(receiver_url: str) -> None:
    assert httpx.get(receiver_url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(receiver_url + "/readyz").json() == {"status": "ready"}


def test_redis_down_gives_503_then_recovers(tmp_path) -> None:
    server = RedisServer(tmp_path / "redis", free_port(), appendfsync="always")
    server.start()
    port = free_port()
    proc = Proc("receiver", ["serve", "--port", str(port)], base_env(server.url)).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz")
        assert post(url + ROUTE, body()).status_code == 200
        server.kill()  # abrupt, like a crash
        down = post(url + ROUTE, body())
        assert down.status_code == 503 and problem(down).errorCode == "unavailable"
        assert down.headers.get("retry-after")
        assert httpx.get(url + "/readyz").status_code == 503
        server.start()  # same port, same AOF directory
        again = post(url + ROUTE, body())
        assert again.status_code == 200 and again.headers["partnersync-outcome"] == "accepted"
        # the delivery accepted before the crash survived it (AOF)
        r = redis.Redis.from_url(server.url)
        assert inbox.count(r) == 2
    finally:
        proc.stop()
        server.stop()


def test_a_delivery_keeps_its_headers_and_every_resend_but_no_credential(
    receiver_url: str, r: redis.Redis
) -> None:
    """#39: the delivery view shows the request's headers and every attempt. The partner's
    credential (Tradevest's static api-key) is kept as a name, never as its value."""
    content = body()
    sent = {"User-Agent": "tradevest-webhooks/1.0", "X-Request-Id": "req-1"}
    first = post(receiver_url + ROUTE, content, sent)
    resends = [post(receiver_url + ROUTE, content, {"X-Request-Id": f"req-{n}"}) for n in (2, 3)]
    delivery_id = first.headers["partnersync-delivery-id"]
    assert {a.headers["partnersync-delivery-id"] for a in resends} == {delivery_id}
    stored = inbox.read(r, [delivery_id])[0]
    headers = dict(stored.headers)
    assert headers["user-agent"] == "tradevest-webhooks/1.0"
    assert headers["x-request-id"] == "req-1"
    assert headers["api-key"] == inbox.REDACTED
    attempts = inbox.resends(r, delivery_id)
    assert [dict(a.headers)["x-request-id"] for a in attempts] == ["req-2", "req-3"]
    assert all(dict(a.headers)["api-key"] == inbox.REDACTED for a in attempts)
    assert all(a.received_ms >= (stored.received_ms or 0) for a in attempts)
    held = b"".join(_values(r, k) for k in r.scan_iter("ps:*"))
    assert b"req-3" in held and WEBHOOK_SECRET.encode() not in held


def _values(r: redis.Redis, key: bytes) -> bytes:
    """Every byte a string, list or hash key holds (DUMP may compress them)."""
    kind = r.type(key)
    if kind == b"string":
        return r.get(key) or b""
    if kind == b"list":
        return b"".join(r.lrange(key, 0, -1))
    if kind == b"hash":
        return b"".join(k + v for k, v in r.hgetall(key).items())
    return b""
