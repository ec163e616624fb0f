"""Reading a request body from the ASGI channel, with the limits the receiver enforces."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Receive

MAX_DEPTH = 32  # JSON nesting accepted where a body is not decoded into a Struct


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


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Nesting deeper than `limit` (brackets inside strings are not counted)."""
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False
