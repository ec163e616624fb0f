"""Reading a request body from the ASGI channel, with the limits the receiver enforces."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Receive


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


async def read_body(headers: Mapping[str, str], receive: Receive, limit: int) -> bytes:
    """The body, refused as soon as it exceeds `limit` (a declared Content-Length too)."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
