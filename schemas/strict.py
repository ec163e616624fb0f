"""Decoding a caller's body into a Struct that forbids unknown fields, with an error that
names the unknown field and the nearest known one.

msgspec says `Object contains unknown field `amout` - at `$``; a person wants to read
`unknown field "amout" at $ (did you mean "amount"?)`. Nothing a caller gives is dropped
silently: a field either is a documented one (and is sent) or the body is refused.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

T = TypeVar("T")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]*)`(?: - at `(?P<at>[^`]*)`)?")
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]")


class InputError(ValueError):
    pass


def decode(raw: bytes | str, type: type[T]) -> T:
    try:
        return msgspec.json.decode(raw, type=type)
    except msgspec.ValidationError as exc:
        raise InputError(explain(str(exc), type)) from None
    except msgspec.DecodeError as exc:
        raise InputError(f"not valid JSON: {exc}") from None


def convert(data: Any, type: type[T]) -> T:
    try:
        return msgspec.convert(data, type=type)
    except msgspec.ValidationError as exc:
        raise InputError(explain(str(exc), type)) from None


def explain(message: str, root: type[Any]) -> str:
    found = _UNKNOWN.search(message)
    if found is None:
        return message
    field, at = found["field"], found["at"] or "$"  # msgspec leaves out "at `$`" at the root
    known = known_fields(root, at)
    near = difflib.get_close_matches(field, known, n=1, cutoff=0.6)
    hint = f' (did you mean "{near[0]}"?)' if near else ""
    listed = f"; known here: {', '.join(sorted(known))}" if known and not near else ""
    return f'unknown field "{field}" at {at}{hint}{listed}'


def known_fields(root: type[Any], at: str) -> list[str]:
    """The encoded field names of the Struct found at a msgspec error path like `$.a[0].b`."""
    t: mi.Type | None = _struct(mi.type_info(root))
    for name, _index in _STEP.findall(at.removeprefix("$")):
        if not name:
            continue  # a list index: _struct has stepped into the item type already
        if not isinstance(t, mi.StructType):
            return []
        field = next((f for f in t.fields if f.encode_name == name), None)
        t = _struct(field.type) if field else None
    return [f.encode_name for f in t.fields] if isinstance(t, mi.StructType) else []


def _struct(t: mi.Type) -> mi.StructType | None:
    """The Struct inside Optional / Annotated / list types, if any."""
    while True:
        if isinstance(t, mi.StructType):
            return t
        if isinstance(t, mi.Metadata):
            t = t.type
        elif isinstance(t, mi.UnionType):
            inner = [s for x in t.types if (s := _struct(x)) is not None]
            return inner[0] if len(inner) == 1 else None
        elif isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
            t = t.item_type
        else:
            return None
