"""The one interface between the engine and a partner.

A partner package (partners/<name>/) exports `PARTNER`, a `Partner`: its entity kinds, its
commands, how to build its HTTP client, how to read its archived events, what to index
after a fetch, its clock tasks and its own figures for /metrics. The engine reaches partners only through a `Catalog`
loaded from PARTNERSYNC_PARTNERS (module names), so a new partner is a new package, and
nothing in the engine changes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import redis

from partnersync import packing
from partnersync.config import PartnerSettings, Settings, partner_module
from partnersync.kinds import Kind
from schemas.store import EntityRecord, Refusal

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from partnersync.backfill import Listing
    from partnersync.client import PartnerClient
    from partnersync.commandkind import CommandKind
    from partnersync.webhooks import Webhooks


class Note(Protocol):
    """What the engine reads from a partner's notification (an archived event's body), in
    the engine's words; each partner's notification Struct maps its own fields onto them."""

    @property
    def status(self) -> str | None: ...
    @property
    def modifiedOn(self) -> datetime | None: ...
    @property
    def change(self) -> str: ...  # what happened, standing in for a status it lacks
    @property
    def refused(self) -> bool: ...  # the partner refused a create or an update
    @property
    def refusal(self) -> Refusal | None: ...  # why (kept on the entity), when refused


# (event type, body) -> the notification, or None when the body says nothing about status
NoteReader = Callable[[str | None, bytes | None], Note | None]
# (pipeline in MULTI, kind, entity key, fetched entity, settings): extra index writes
Indexer = Callable[[redis.client.Pipeline, Kind, str, Any, Settings], None]
# (connection, now in ms): the partner's own figures for /metrics
Metrics = Callable[[redis.Redis, int], Iterable["Metric"]]
# a clock task: (name, interval in seconds, run)
Task = tuple[str, float, Callable[[], object]]


def _no_notes(event_type: str | None, body: bytes | None) -> Note | None:
    return None


@dataclass(frozen=True)
class ConsolePage:
    """A read-only page a partner adds to the console, at /partner/{partner}/{slug} and
    linked from its menu. The template extends the console's base.html; `context` reads
    what it shows from Redis (no personal data: every console role sees it)."""

    slug: str
    title: str
    template: Path
    context: Callable[[redis.Redis], dict[str, Any]]


@dataclass(frozen=True)
class Partner:
    name: str
    base_url: Callable[[Settings], str]
    client: Callable[[Settings, httpx.AsyncClient, redis.Redis], PartnerClient]
    kinds: tuple[Kind, ...] = ()
    commands: tuple[CommandKind, ...] = ()
    notes: NoteReader = _no_notes
    index: Indexer | None = None
    # its clock tasks, given the process's Context (partnersync/context.py, which loads
    # the partners: named here only in words)
    tasks: Callable[[Any], list[Task]] = field(default=lambda ctx: [])
    metrics: Metrics | None = None
    external_id_name: str = "externalId"  # what the partner calls it
    settings: type[PartnerSettings] | None = None  # its own variables (partnersync/config.py)
    webhooks: Webhooks | None = None  # a partner that pushes them (partnersync/webhooks.py)
    # the console's pages of its own, and the line it shows beside an entity of the
    # partner that needs attention (field names and codes only: no personal data)
    console_pages: tuple[ConsolePage, ...] = ()
    # its list endpoints, parents first: what `partnersync backfill` imports (backfill.py)
    listings: tuple[Listing, ...] = ()
    # its own `partnersync` commands: adds them to the CLI's subparsers (cli/__init__.py)
    cli: Callable[[Any], None] | None = None
    attention_note: Callable[[EntityRecord], str] = field(default=lambda record: "")
    # `run`'s variables pointing the partner at its fake in the sandbox (its base URL)
    sandbox_env: Callable[[str], dict[str, str]] = field(default=lambda sandbox: {})
    # its stored values' zstd dictionaries, one `<kind>.zdict` each (partnersync/packing.py)
    dictionaries: Path | None = None


class Catalog:
    """The partners a process runs, and their kinds and commands by name."""

    def __init__(self, partners: Sequence[Partner]):
        self.partners = {p.name: p for p in partners}
        self.kinds: dict[tuple[str, str], Kind] = {
            (p.name, k.kind): k for p in partners for k in p.kinds
        }
        self.commands: dict[str, CommandKind] = {c.name: c for p in partners for c in p.commands}
        for p in partners:
            if p.dictionaries is not None:
                packing.DICTIONARIES.add(p.name, p.dictionaries)

    def partner_of(self, url: str, settings: Settings) -> str | None:
        """The partner whose API `url` is on."""
        for p in self.partners.values():
            if url.startswith(p.base_url(settings)):
                return p.name
        return None


@functools.cache
def load(modules: tuple[str, ...]) -> Catalog:
    """The catalog of the partner packages named (each exports PARTNER)."""
    return Catalog([partner_module(name) for name in modules])
