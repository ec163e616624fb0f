"""JSON problem responses (every 4xx/5xx of the receiver has a JSON body)."""

from __future__ import annotations

import msgspec
from starlette.responses import Response


class Problem(msgspec.Struct, omit_defaults=True):
    error: str  # machine-readable, e.g. "unauthorized"
    detail: str  # what was wrong, for a human


_encode = msgspec.json.encode


def problem_body(error: str, detail: str) -> bytes:
    return _encode(Problem(error, detail))


def problem(
    status: int, error: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        problem_body(error, detail),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def json_response(content: object, status: int = 200) -> Response:
    return Response(_encode(content), status_code=status, media_type="application/json")
