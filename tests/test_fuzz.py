"""Hostile input against real receivers: never a 5xx, never an enqueue, every error a JSON
problem, and the webhook secret never in a log line."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis
import standardwebhooks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.redisserver import RedisServer, free_port
from partnersync import inbox, keys
from tests.conftest import ROOT, base_env, wait_http

SECRET = "fuzz-secret-value-4f1c"
WHSEC = "whsec_" + base64.b64encode(b"fuzz-signing-key-0123456789abcdef").decode()
ROUTES = ["transfer-notification", "customer-notification", "labels-update-notification",
          "re-token-prices", "identification-verification-notification", "brand-new-type"]  # fmt: skip
FIGURES: Counter[str] = Counter()


def examples(full: int) -> int:
    """Half of `full` in `make test` (the suite's 10 minutes); FUZZ_SCALE=1 runs them all."""
    return max(10, int(full * float(os.environ.get("FUZZ_SCALE", "0.5"))))


class Receiver:
    def __init__(self, server: RedisServer, log: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        environment = base_env(
            server.url, **{"TRADEVEST_WEBHOOK_SECRETS": SECRET, "LOG_LEVEL": "DEBUG", **env}
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "partnersync", "serve", "--port", str(self.port)],
            env=environment, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_http(self.url + "/healthz")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def fuzz_redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("fuzz-redis"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def header_receiver(fuzz_redis, tmp_path_factory):
    receiver = Receiver(fuzz_redis, tmp_path_factory.mktemp("logs") / "header.log")
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def signing_receiver(fuzz_redis, tmp_path_factory):
    receiver = Receiver(
        fuzz_redis, tmp_path_factory.mktemp("logs") / "signing.log",
        TRADEVEST_WEBHOOK_AUTH="standard-webhooks", TRADEVEST_WEBHOOK_SECRETS=WHSEC,
    )  # fmt: skip
    yield receiver
    receiver.stop()


def stored(r: redis.Redis) -> tuple[int, int, int]:
    return (
        inbox.count(r),
        r.llen("rq:queue:partnersync"),
        r.zcard(keys.DIRTY),
    )


UUID = "3f0c2a52-6a43-4c42-9a8e-0c7f1f3e9a01"
CORPUS = [
    b"", b"{", b'{"transferId":', b"[]", b"null", b"42", b'"string"', b"\xff\xfe\xfd", b"{}",
    b'{"transferId":"' + UUID.encode() + b'","notificationType":"CREATED","status":1}',
    b'{"transferId":"' + UUID.encode() + b'","notificationType":"CREATED","modifiedOn":"not a date"}',
    b'{"transferId":"' + UUID.encode() + b'","notificationType":' + b"9" * 400 + b"}",
    b'{"transferId":"' + UUID.encode() + b'","notificationType":"' + b"A" * 100 + b'"}',
    b'{"transferId":"' + UUID.encode() + b'","transferId":"x","notificationType":"CREATED"}',
    b'{"transferId":"' + UUID.encode() + b'","notificationType":"CREATED","validationError":{"errorType":5}}',
    b'{"updatedCustomers":"not-a-list","notificationType":"UPDATED"}',
    b"[" * 5000 + b"]" * 5000, b'{"a":' * 2000 + b"1" + b"}" * 2000,
    b'{"transferId":"\\ud800","notificationType":"CREATED"}', b'{"x":1e999999}',
]  # fmt: skip

bodies = st.one_of(
    st.sampled_from(CORPUS),
    st.binary(max_size=300),
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=20,
    ).map(lambda v: json.dumps(v).encode()),
)
content_types = st.sampled_from(
    [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
        "application/json; charset=utf-8",
    ]
)


def record(response: httpx.Response) -> None:
    FIGURES["requests"] += 1
    FIGURES[f"{response.status_code // 100}xx"] += 1
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/json"
        problem = response.json()
        assert problem["errorCode"] and problem["message"] and problem["requestId"]
        assert SECRET not in response.text


@settings(
    max_examples=examples(250),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(route=st.sampled_from(ROUTES), body=bodies, content_type=content_types,
       secret=st.sampled_from([None, "", "wrong", SECRET[:-1], SECRET + "x", SECRET.upper()]))  # fmt: skip
def test_unauthenticated_requests_store_nothing(
    header_receiver, fuzz_redis, route, body, content_type, secret
) -> None:
    r = redis.Redis.from_url(fuzz_redis.url)
    before = stored(r)
    headers = {"Content-Type": content_type}
    if secret is not None:
        headers["api-key"] = secret
    response = httpx.post(
        f"{header_receiver.url}/webhooks/tradevest/{route}", content=body, headers=headers
    )
    record(response)
    assert response.status_code == 401
    assert stored(r) == before


@settings(
    max_examples=examples(250),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(route=st.sampled_from(ROUTES[:3]), body=bodies, content_type=content_types)
def test_authenticated_malformed_bodies_are_4xx_and_store_nothing(
    header_receiver, fuzz_redis, route, body, content_type
) -> None:
    r = redis.Redis.from_url(fuzz_redis.url)
    before = stored(r)
    response = httpx.post(
        f"{header_receiver.url}/webhooks/tradevest/{route}", content=body,
        headers={"api-key": SECRET, "Content-Type": content_type},
    )  # fmt: skip
    record(response)
    if response.status_code == 200:
        FIGURES["enqueued"] += 1  # a well-formed notification slipped through the strategy
    else:
        assert stored(r) == before


VALID_TRANSFER = (
    b'{"transferId":"' + UUID.encode() + b'","status":"PENDING",'
    b'"modifiedOn":"2026-01-01T10:00:00Z","notificationType":"UPDATED"}'
)
# bytes a broken sender or an attacker puts in: invalid UTF-8 starts and continuations,
# surrogates' encodings, raw control characters, quotes and backslashes
BAD_BYTES = [0x00, 0x01, 0x1F, 0x7F, 0x80, 0xBF, 0xC0, 0xC3, 0xED, 0xF5, 0xFF, 0x22, 0x5C]


@settings(
    max_examples=examples(250),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(VALID_TRANSFER) - 1), st.sampled_from(BAD_BYTES)),
        min_size=1, max_size=4,
    )
)  # fmt: skip
def test_byte_mutations_of_a_valid_body_are_never_5xx(header_receiver, fuzz_redis, edits) -> None:
    body = bytearray(VALID_TRANSFER)
    for position, byte in edits:
        body[position] = byte
    response = httpx.post(
        f"{header_receiver.url}/webhooks/tradevest/transfer-notification", content=bytes(body),
        headers={"api-key": SECRET, "Content-Type": "application/json"},
    )  # fmt: skip
    record(response)
    if response.status_code == 200:
        FIGURES["enqueued"] += 1  # the edit left a valid notification


# what an HTTP client can send at all: no DEL, no whitespace at either end (httpx refuses)
header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=60,
).map(str.strip)
path_segments = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"),
    min_size=1, max_size=80,
)  # fmt: skip


@settings(
    max_examples=examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    segment=path_segments,
    headers=st.dictionaries(
        st.sampled_from(["api-key", "content-type", "content-length-x", "x-forwarded-for",
                         "webhook-id", "webhook-signature", "webhook-timestamp", "x-custom"]),
        header_values, max_size=5,
    ),
)  # fmt: skip
def test_made_up_paths_and_headers_are_never_5xx(header_receiver, segment, headers) -> None:
    encoded = {k: v.encode("latin-1") for k, v in headers.items()}
    with httpx.Client() as client:
        request = client.build_request(
            "POST", f"{header_receiver.url}/webhooks/tradevest/{segment}", content=b"{}",
            headers=list(encoded.items()),
        )  # fmt: skip
        response = client.send(request)
    record(response)


def sign(msg_id: str, stamp: int, body: bytes, secret: str = WHSEC) -> str:
    from datetime import UTC, datetime

    return standardwebhooks.Webhook(secret).sign(
        msg_id, datetime.fromtimestamp(stamp, UTC), body.decode("utf-8", "replace")
    )


VALID = json.dumps(
    {
        "transferId": UUID,
        "status": "PENDING",
        "modifiedOn": "2026-01-01T00:00:00Z",
        "notificationType": "CREATED",
    }
).encode()
forgeries = st.sampled_from(
    [
        "forged",
        "stale",
        "future",
        "other-key",
        "no-signature",
        "v2",
        "body-changed",
        "bad-timestamp",
    ]
)


@settings(
    max_examples=examples(120),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(kind=forgeries, msg_id=st.text(alphabet="abcdefghij0123456789_", min_size=1, max_size=20))
def test_forged_and_replayed_signatures_are_refused(
    signing_receiver, fuzz_redis, kind, msg_id
) -> None:
    r = redis.Redis.from_url(fuzz_redis.url)
    before = stored(r)
    now = int(time.time())
    stamp, body, secret = now, VALID, WHSEC
    if kind == "stale":
        stamp = now - 3600
    elif kind == "future":
        stamp = now + 3600
    elif kind == "other-key":
        secret = "whsec_" + base64.b64encode(b"another-key-entirely-0000000000").decode()
    signature = sign(msg_id, stamp, body, secret)
    if kind == "forged":
        signature = "v1," + base64.b64encode(b"x" * 32).decode()
    elif kind == "v2":
        signature = signature.replace("v1,", "v2,")
    headers = {"Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(stamp),
               "webhook-signature": signature}  # fmt: skip
    if kind == "no-signature":
        del headers["webhook-signature"]
    if kind == "bad-timestamp":
        headers["webhook-timestamp"] = "yesterday"
    if kind == "body-changed":
        body = body.replace(b"PENDING", b"PROCESSED")
    response = httpx.post(
        f"{signing_receiver.url}/webhooks/tradevest/transfer-notification",
        content=body,
        headers=headers,
    )
    record(response)
    assert response.status_code == 401
    assert stored(r) == before


def test_a_genuine_signed_delivery_is_accepted_once(signing_receiver, fuzz_redis) -> None:
    stamp = int(time.time())
    headers = {"Content-Type": "application/json", "webhook-id": "msg_genuine", "webhook-timestamp": str(stamp),
               "webhook-signature": sign("msg_genuine", stamp, VALID)}  # fmt: skip
    url = f"{signing_receiver.url}/webhooks/tradevest/transfer-notification"
    assert (
        httpx.post(url, content=VALID, headers=headers).headers["partnersync-outcome"] == "accepted"
    )
    # a replay inside the tolerance carries the same webhook-id: deduplicated
    assert (
        httpx.post(url, content=VALID, headers=headers).headers["partnersync-outcome"]
        == "duplicate"
    )


def test_secret_never_logged_and_figures(header_receiver, signing_receiver) -> None:
    time.sleep(0.5)  # let the receivers flush their logs
    for receiver in (header_receiver, signing_receiver):
        text = receiver.log.read_text(errors="replace")
        assert SECRET not in text and WHSEC not in text and WHSEC.removeprefix("whsec_") not in text
    print(f"\nFUZZ requests={FIGURES['requests']} 2xx={FIGURES['2xx']} 4xx={FIGURES['4xx']} "
          f"5xx={FIGURES['5xx']} enqueued={FIGURES['enqueued']}")  # fmt: skip
    assert FIGURES["requests"] > 500 and FIGURES["5xx"] == 0
