"""What a Tradevest notification body is at intake: the entities it names and its dedupe
digest, or why it cannot be taken in. One reading for a webhook delivery (receiver) and
a notification recovered by the sweeper (partners/tradevest/sweeper.py) alike."""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from schemas.dedupe import digest
from schemas.intake import Unusable
from schemas.tradevest.events import EventType

__all__ = ["Prepared", "Unusable", "prepare"]

MAX_DEPTH = 32  # JSON nesting accepted where a body is not decoded into a Struct


class Prepared(NamedTuple):
    ids: list[str]  # the entities of the event type's kind it names (none: kept only)
    dedupe: str | None  # the dedupe digest; None: not deduplicated


def prepare(event: EventType | None, event_type: str, body: bytes, max_entities: int) -> Prepared:
    """`event` is None for an event type Tradevest does not document (kept as is)."""
    if event is None or event.kind is None:
        return Prepared([], archived_digest(event_type, body, dict if event is None else object))
    notification = decoded(event, body)
    ids = event.entity_ids(notification)
    if len(ids) > max_entities:
        raise Unusable(
            "too_many_entities",
            f"{len(ids)} distinct entities in one delivery; at most {max_entities}",
        )
    return Prepared(ids, event.dedupe_digest(notification, ids))


def decoded(event: EventType, body: bytes) -> Any:
    """The body decoded straight into the event's notification Struct."""
    try:
        return event.decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise Unusable("invalid_body", f"{event.name}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise Unusable("malformed_body", f"body is not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:  # invalid UTF-8 inside a string (not a DecodeError)
        raise Unusable("malformed_body", f"body is not valid UTF-8: {exc.reason}") from None
    except RecursionError:  # msgspec's guard against deeply nested input
        raise Unusable("too_deep", "JSON nested too deeply") from None


def archived_digest(event_type: str, body: bytes, decode_as: type) -> str:
    """A body kept as is (an unknown event type, or prices): checked to be JSON of the
    expected shape and bounded depth; deduplicated on its exact content."""
    if too_deep(body):
        raise Unusable("too_deep", f"JSON nested deeper than {MAX_DEPTH}")
    try:
        msgspec.json.decode(body, type=decode_as)
    except msgspec.DecodeError as exc:
        raise Unusable("malformed_body", f"body is not a JSON object: {exc}") from None
    except UnicodeDecodeError as exc:
        raise Unusable("malformed_body", f"body is not valid UTF-8: {exc.reason}") from None
    except RecursionError:
        raise Unusable("too_deep", "JSON nested too deeply") from None
    return digest(event_type, body.decode("utf-8", "replace"))


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
