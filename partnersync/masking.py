"""An entity's partner data as people see it: read through its kind's schema, personal
data masked (schemas/sensitive.py). The CLI and the console show nothing else unless an
operator asks for the raw data."""

from __future__ import annotations

from typing import Any

import msgspec

from partnersync.partner import Catalog
from schemas.sensitive import redact
from schemas.store import EntityRecord


def masked_data(record: EntityRecord, catalog: Catalog) -> Any:
    if bytes(record.data) == b"null":
        return None
    kind = catalog.kinds.get((record.partner, record.kind))
    if kind is None or kind.decoder is None:
        return {"(fields)": "not rendered: no schema for this kind"}
    try:
        return redact(kind.decoder.decode(record.data))
    except msgspec.DecodeError:
        return {"(fields)": "not rendered: does not match the schema"}


def raw_data(record: EntityRecord) -> Any:
    """The stored JSON as the partner sent it, personal data included."""
    return msgspec.json.decode(record.data)
