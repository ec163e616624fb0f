"""A partner's command kind: what it creates (or does to what exists), where, and how a
lost answer is looked up.

Declared by each partner package (`Partner.commands`); partnersync/commands.py runs them.
"""

from __future__ import annotations

import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import redis

from partnersync.config import Settings
from schemas.commands import CommandRecord

# Every id at the partner that this command may have created, oldest first ([] = none).
Lookup = Callable[[Any, CommandRecord], Awaitable[list[str]]]


@dataclass(frozen=True)
class CommandKind:
    name: str
    partner: str
    entity_kind: str
    data: type[Any]
    path: str  # the request's path; `{field}` taken from the data (and dropped from the body)
    result_field: str  # the new entity's id in the create result ("" for an action)
    lookup: Lookup
    # whom the caller must name for the partner to act for (its word, e.g. Tradevest's
    # "a Requestor-ID (the acting natural person)"); empty when the partner asks for no one
    acting_for: str = ""
    external_id: str | None = "externalId"  # the field carrying the derived id, if any
    # The partner refuses a second create with the same external_id (Tradevest: 409). When
    # it does not (Saxo's ExternalReference "may, but is not required to, be unique"), the
    # command looks up before every send: only the partner can say it was never sent.
    dedupes: bool = True
    validate: Callable[[Any, Settings, redis.Redis], None] | None = None  # before sending
    # Creates without an externalId: the fields whose values make a scope (e.g. customer +
    # productCode). One such create per scope at a time; before its first send the scope
    # is listed (`snapshot`), and after an unknown outcome what exists now and did not then
    # is its entity (no clock involved).
    scope: tuple[str, ...] = ()
    snapshot: Lookup | None = None
    # Other ids of the new entity in the create result (Saxo's SignUpId): linked to it for
    # good, so `entities find` knows them
    aliases: tuple[str, ...] = ()
    # The partner's refusals of a create it already has, naming no id of it (Saxo's
    # PreClientMatch / ClientMatch): answered to a resend, an earlier send arrived and its
    # entity is unknown; the command stops there and asks for a human, never sending again
    resent_codes: tuple[str, ...] = ()
    # Statuses of its entity after which the partner never takes its externalId again
    # (Tradevest's INVALID): a new submit of that intent is refused before sending
    spent_by: frozenset[str] = frozenset()
    method: str = "POST"
    # An action on what the partner already has (modify, cancel, close, sign), not a create:
    # `target` is the path field naming its entity (of `entity_kind`), None when it acts on
    # none partnersync mirrors. An action links no entity to itself (many act on one) and
    # its lookup after a lost answer says whether its effect is visible ([] sends it again:
    # an action is idempotent at the partner or refused there).
    creates: bool = True
    target: str | None = None
    # the target's statuses that show the action took effect (`--wait` waits for one; any
    # other final status means it came too late)
    effect: frozenset[str] = frozenset()

    @property
    def path_fields(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.path) if f)


def body_fields(record: CommandRecord) -> dict[str, str]:
    """The command's body fields as strings (to fill paths, queries and scopes)."""
    return {k: str(v) for k, v in msgspec.json.decode(record.body, type=dict).items()}
