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
import importlib.util
from collections import defaultdict
from collections.abc import Callable

from partnersync.errors import ConfigError
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


def check(path: str | None) -> None:
    """What can be said of `path` without running the user's code (config.load, at every
    start): its form, and that its module is there. Raises ConfigError."""
    if not path:
        return
    module_name, _, attribute = path.partition(":")
    if (
        not module_name
        or ":" in attribute
        or not all(
            part.isidentifier() for part in (*module_name.split("."), attribute or "handlers")
        )
    ):
        raise ConfigError(f"PARTNERSYNC_HANDLERS={path!r}: use package.module:attribute")
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ConfigError(f"PARTNERSYNC_HANDLERS={path!r}: no module {module_name!r} here")


def load(path: str | None) -> Handlers:
    """`package.module:attribute` (or `package.module`, attribute `handlers`). Raises
    ConfigError naming what is wrong (the worker pool checks it once, before its workers)."""
    if not path:
        return Handlers()
    check(path)
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module failed to import: say why, once
        raise ConfigError(
            f"PARTNERSYNC_HANDLERS={path!r}: importing {module_name} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    found = getattr(module, attribute or "handlers", None)
    if not isinstance(found, Handlers):
        raise ConfigError(
            f"PARTNERSYNC_HANDLERS={path!r}: {module_name} has no partnersync.handlers.Handlers "
            f"named {attribute or 'handlers'}"
        )
    return found
