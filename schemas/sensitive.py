"""Personal data and secrets are marked on the Struct field, and never rendered.

    firstName: Annotated[str, msgspec.Meta(max_length=255), Sensitive]

`redact(obj)` turns a Struct into plain data with every marked field replaced by a
mask — at any depth, in lists and optional fields too. Whatever partnersync shows (CLI
output, logs, dead letters) goes through it; the store keeps the partner's data whole.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
import msgspec.inspect as mi

Sensitive = msgspec.Meta(extra={"sensitive": True})
MASK = "***"


def _marked(t: mi.Type) -> bool:
    if isinstance(t, mi.Metadata):
        return bool((t.extra or {}).get("sensitive")) or _marked(t.type)
    if isinstance(t, mi.UnionType):
        return any(_marked(x) for x in t.types)
    return False


@cache
def sensitive_fields(struct: type[msgspec.Struct]) -> frozenset[str]:
    info = mi.type_info(struct)
    return frozenset(f.encode_name for f in info.fields if _marked(f.type))  # type: ignore[attr-defined]


def redact(value: Any) -> Any:
    """Plain data (as msgspec.to_builtins would give) with sensitive fields masked."""
    if isinstance(value, msgspec.Struct):
        hidden = sensitive_fields(type(value))
        out: dict[str, Any] = {}
        for field in msgspec.structs.fields(value):
            item = getattr(value, field.name)
            if item is not None:
                out[field.encode_name] = MASK if field.encode_name in hidden else redact(item)
        return out
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    return msgspec.to_builtins(value, enc_hook=str)
