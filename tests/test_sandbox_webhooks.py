"""The sandbox delivers Tradevest webhooks as platform-api-overview §3 documents the
partner's answer: 200 OK is delivered; a 400 carries an ErrorMessage and is the partner's
refusal (not retried); anything else is retried and then kept as undelivered [inferred:
the documents list only 200 and 400]."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.faults import Faults
from sandbox.webhooks import Deliverer
from tests.conftest import serving

ERROR_MESSAGE = {"message": "no", "responseType": "ERROR", "requestId": "r-1", "errorCode": "x"}
ANSWERS = {
    "ok": (200, b""),
    "no-content": (204, b""),
    "refused": (400, json.dumps(ERROR_MESSAGE).encode()),
    "refused-badly": (400, b'{"error":"x"}'),
    "broken": (500, b""),
}


@pytest.fixture(scope="module")
def partner_endpoint() -> Iterator[str]:
    async def answer(request: Request) -> Response:
        status, body = ANSWERS[request.path_params["how"]]
        return Response(body, status, media_type="application/json")

    with serving(
        Starlette(routes=[Route("/{how}", answer, methods=["POST"])]), "the endpoint"
    ) as url:
        yield url


def deliver(url: str) -> Deliverer:
    async def run() -> Deliverer:
        deliverer = Deliverer(Faults(seed=1), attempts=3, backoff_s=0.01)
        await deliverer.start()
        deliverer.registrations["TRANSFER_NOTIFICATION"] = {"url": url}
        deliverer.notify("TRANSFER_NOTIFICATION", {"transferId": "t-1"}, "t-1")
        await asyncio.gather(*deliverer.tasks)
        await deliverer.stop()
        return deliverer

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("how", "sent", "undelivered", "answers", "undocumented"),
    [
        ("ok", 1, None, {"200": 1}, 0),
        ("no-content", 0, "FAILED", {"204": 3}, 3),
        ("refused", 0, "REFUSED", {"400": 1}, 0),
        ("refused-badly", 0, "REFUSED", {"400": 1}, 1),
        ("broken", 0, "FAILED", {"500": 3}, 3),
    ],
)
def test_only_200_is_delivered(
    partner_endpoint: str,
    how: str,
    sent: int,
    undelivered: str | None,
    answers: dict[str, int],
    undocumented: int,
) -> None:
    d = deliver(f"{partner_endpoint}/{how}")
    assert d.sent == sent
    assert [u["reason"] for u in d.undelivered] == ([undelivered] if undelivered else [])
    assert d.answers == answers
    assert d.undocumented == undocumented
