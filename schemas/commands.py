"""The command journal: one record per outbound create, written before the request goes out."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import msgspec


class CommandState(enum.StrEnum):
    PENDING_SEND = "PENDING_SEND"  # journaled, nothing sent yet
    SENT = "SENT"  # a request is (or was) in flight: its outcome is not known yet
    UNKNOWN = "UNKNOWN"  # timeout/5xx/crash: look the externalId up before any resend
    ACCEPTED = "ACCEPTED"  # the partner has it: entityId known (or linked on its first webhook)
    REJECTED = "REJECTED"  # the partner refused it (validation); never retried

    @property
    def final(self) -> bool:
        return self in (CommandState.ACCEPTED, CommandState.REJECTED)


class PartnerRejection(msgspec.Struct, kw_only=True, omit_defaults=True):
    status: int
    message: str
    errorCode: str | None = None
    details: list[Any] = []  # ErrorMessage.errorDetails / Saxo ModelState, as sent


class Attempt(msgspec.Struct, kw_only=True, omit_defaults=True):
    at: datetime
    action: str  # "send" or "lookup"
    outcome: str  # e.g. "2xx", "timeout", "409", "found", "not found"


class CommandRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    externalId: str
    partner: str
    kind: str  # command kind, e.g. "transfer", "natural-person"
    intentKey: str | None = None  # the caller's idempotency key, when given
    body: msgspec.Raw  # the create body as sent (externalId included)
    pathParams: dict[str, str] = {}
    actingFor: str | None = None  # whom the partner acts for (Tradevest: the Requestor-ID)
    state: CommandState = CommandState.PENDING_SEND
    attempts: int = 0
    entityId: str | None = None
    result: dict[str, Any] | None = None  # the partner's create answer (e.g. Saxo's SignUpId)
    rejection: PartnerRejection | None = None
    createdAt: datetime
    updatedAt: datetime
    sentAt: datetime | None = None
    # The last send's deadline, on Redis's clock (ms): until then the worker that journaled
    # SENT may still be sending, so a successor waits it out before looking up.
    sendDeadlineMs: int | None = None
    # Creates without an externalId: the scope's ids before the first send.
    snapshot: list[str] | None = None
    # The audit after a resend found more than one entity for this command: all their ids.
    doubleBooking: list[str] = []
    # A resend was accepted: the partner's list is read once more then (Redis's clock, ms),
    # for an earlier attempt's request that arrived after this one's lookup.
    auditDueMs: int | None = None
    history: list[Attempt] = []
