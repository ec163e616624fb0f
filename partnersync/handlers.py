"""User handlers, called after a transition is stored.

    # myapp/handlers.py
    from partnersync.handlers import Handlers
    handlers = Handlers()

    @handlers.on("tradevest", "transfer", "PROCESSED")
    def booked(change): ...

and `PARTNERSYNC_HANDLERS=myapp.handlers:handlers`.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable

from schemas.store import EntityRecord, Transition

Handler = Callable[[Transition, EntityRecord], object]
ANY = "*"


class Handlers:
    def __init__(self) -> None:
        self._registry: dict[tuple[str, str, str], list[Handler]] = defaultdict(list)

    def on(self, partner: str, kind: str, status: str = ANY) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self._registry[(partner, kind, status)].append(fn)
            return fn

        return register

    def for_transition(self, partner: str, kind: str, status: str) -> list[Handler]:
        return [
            *self._registry.get((partner, kind, status), ()),
            *self._registry.get((partner, kind, ANY), ()),
        ]

    def __bool__(self) -> bool:
        return bool(self._registry)


def load(path: str | None) -> Handlers:
    """`package.module:attribute` (or `package.module`, attribute `handlers`)."""
    if not path:
        return Handlers()
    module_name, _, attribute = path.partition(":")
    module = importlib.import_module(module_name)
    found = getattr(module, attribute or "handlers")
    if not isinstance(found, Handlers):
        raise TypeError(f"PARTNERSYNC_HANDLERS={path!r} is not a partnersync.handlers.Handlers")
    return found
