"""`partnersync command`: outbound creates, journaled, never booked twice."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any

from cli.common import to_json, window
from cli.table import render
from partnersync.config import Settings

EX_TEMPFAIL = 75  # sysexits.h: not done now, the same command later may succeed


def cmd_command_submit(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import commands, partner, workqueue
    from partnersync.context import connect
    from schemas import strict

    known = partner.load(settings.partners).commands
    kind = known.get(args.kind)
    if kind is None:
        print(
            f"partnersync: unknown command {args.kind!r}; known: {', '.join(sorted(known))}",
            file=sys.stderr,
        )
        return 2
    raw = args.data
    if raw.startswith("@"):
        try:
            with open(raw[1:], "rb") as f:
                raw = f.read()
        except OSError as exc:  # missing file, a directory, no permission
            print(f"partnersync: --data {args.data}: {exc.strerror}", file=sys.stderr)
            return 2
    try:
        data = strict.decode(raw, kind.data)
    except strict.InputError as exc:
        print(f"partnersync: {args.kind}: {exc}", file=sys.stderr)
        return 2
    connection = connect(settings)
    wq = workqueue.WorkQueue.from_settings(connection, settings)
    try:
        record, created = commands.submit(
            connection,
            wq,
            args.kind,
            data,
            intent_key=args.key,
            acting_for=args.acting_for,
            settings=settings,
        )
    except commands.NotConfirmed as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    except commands.CommandError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    entity = None
    if args.wait:
        deadline = time.monotonic() + args.wait
        record = commands.wait(connection, record.externalId, args.wait) or record
        if record.state == "ACCEPTED":  # accepted is not done: the entity may still fail
            entity = settled_entity(connection, settings, record, deadline)
    status = entity.status if entity else None
    failed = record.state == "REJECTED" or (entity is not None and entity.failed)
    if args.json:
        print(
            to_json(
                {
                    "externalId": record.externalId,
                    "created": created,
                    "state": record.state,
                    "entityId": record.entityId,
                    "entityStatus": status,
                    "failed": failed,
                    "reason": outcome_reason(record, entity),
                }
            )
        )
    else:
        verb = "submitted" if created else "already submitted (nothing sent again)"
        print(
            f"{record.externalId}  {verb}  state {record.state}"
            + (f"  entity {record.entityId}" if record.entityId else "")
            + (f"  status {status}" if status else "")
        )
        reason = outcome_reason(record, entity)
        if reason:
            print(f"partnersync: {status or record.state}: {reason}", file=sys.stderr)
    return 1 if failed else 0


@dataclass(frozen=True)
class Settled:
    """The entity a command created, as far as it got."""

    status: str | None
    failed: bool
    reason: str | None


def command_entity(connection: Any, settings: Settings, record: Any) -> tuple[str | None, Any]:
    """(entity key, stored entity) of a command's entity, either possibly None."""
    from partnersync import keys, partner, store

    kind = partner.load(settings.partners).commands[record.kind]
    entity_key = (
        keys.entity_key(kind.partner, kind.entity_kind, record.entityId)
        if record.entityId
        else store.by_external_id(connection, kind.partner, record.externalId)
    )
    entity = store.load(connection, [entity_key])[0] if entity_key else None
    return entity_key, entity


def settled_entity(
    connection: Any, settings: Settings, record: Any, deadline: float
) -> Settled | None:
    """The command's entity once its outcome is decided (a failed status, or one from
    which none can follow), or as it is at `deadline`."""
    from partnersync import partner

    catalog = partner.load(settings.partners)
    command = catalog.commands[record.kind]
    kind = catalog.kinds.get((command.partner, command.entity_kind))
    if not command.creates:
        return action_outcome(connection, settings, record, deadline)
    while True:
        _, entity = command_entity(connection, settings, record)
        if entity is not None and kind is not None and entity.status:
            error = entity.refusal
            reason = f"{error.code}: {error.description}" if error else None
            settled = Settled(entity.status, entity.status in kind.failed, reason)
            # settled: failed, or past every status that could still mean failure
            decided = settled.failed or not any(
                kind.lifecycle.reaches(entity.status, f) for f in kind.failed
            )
            if decided or time.monotonic() >= deadline:
                return settled
        elif time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def action_outcome(
    connection: Any, settings: Settings, record: Any, deadline: float
) -> Settled | None:
    """What an accepted action did to its target: a status of its effect (done), another
    final status (it came too late), a refusal recorded since it was sent, or a change
    stored since (a modification applied); as it is at `deadline`."""
    from partnersync import partner

    catalog = partner.load(settings.partners)
    command = catalog.commands[record.kind]
    kind = catalog.kinds.get((command.partner, command.entity_kind))
    if command.target is None or kind is None:
        return None  # acts on nothing partnersync mirrors: accepted is all there is
    sent = record.sentAt
    while True:
        _, entity = command_entity(connection, settings, record)
        if entity is not None and entity.status:
            refused = [r for r in entity.rejections if sent is None or r.at >= sent]
            if command.effect and entity.status in command.effect:
                return Settled(entity.status, False, None)
            if kind.lifecycle.terminal(entity.status) and entity.status not in command.effect:
                return Settled(
                    entity.status, True,
                    f"came too late: the {command.entity_kind} is {entity.status}",
                )  # fmt: skip
            if refused:
                last = refused[-1].refusal
                reason = f"{last.code}: {last.description}" if last else "refused"
                return Settled(entity.status, True, reason)
            if not command.effect and sent is not None and entity.updatedAt >= sent:
                return Settled(entity.status, False, None)
        if time.monotonic() >= deadline:
            return Settled(entity.status, False, None) if entity is not None else None
        time.sleep(0.1)


def outcome_reason(record: Any, entity: Settled | None) -> str | None:
    """Why a command or its entity failed, in the partner's words."""
    if record.rejection is not None:
        r = record.rejection
        return " ".join(str(x) for x in (r.status, r.errorCode, r.message) if x)
    if entity is not None and entity.failed:
        return entity.reason or f"the partner set it to {entity.status}"
    return None


def cmd_command_show(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import commands
    from partnersync.context import connect

    connection = connect(settings)
    record = commands.load(connection, args.external_id)
    if record is None:
        print(f"partnersync: no command with externalId {args.external_id!r}", file=sys.stderr)
        return 1
    entity_key, entity = command_entity(connection, settings, record)
    # The body may hold personal data (names, IBANs): it is never printed.
    story = {
        "externalId": record.externalId, "partner": record.partner, "kind": record.kind,
        "intentKey": record.intentKey, "state": record.state, "attempts": record.attempts,
        "createdAt": record.createdAt, "sentAt": record.sentAt, "updatedAt": record.updatedAt,
        "entityKey": entity_key, "entityStatus": entity.status if entity else None,
        "refusal": entity.refusal if entity else None,
        "rejectedUpdates": entity.rejections if entity else [],
        "rejection": record.rejection, "history": record.history,
    }  # fmt: skip
    if args.json:
        print(to_json(story))
        return 0
    for name in (
        "externalId",
        "kind",
        "intentKey",
        "state",
        "attempts",
        "createdAt",
        "sentAt",
        "entityKey",
        "entityStatus",
    ):
        print(f"{name:<15} {story[name] if story[name] is not None else '-'}")
    if record.rejection:
        r = record.rejection
        print(f"{'rejected':<15} {r.status} {r.errorCode or ''} {r.message}")
        for detail in r.details:
            print(f"{'':<15} {detail}")
    if entity and entity.refusal:
        print(f"{'invalid':<15} {entity.refusal.code}: {entity.refusal.description}")
    print("history:")
    for attempt in record.history:
        print(f"  {attempt.at.isoformat()}  {attempt.action:<7} {attempt.outcome}")
    return 0


def cmd_command_list(args: argparse.Namespace, settings: Settings) -> int:
    """Newest submitted first, a page at a time, from the per-kind-and-state indexes."""
    from cli.entities import unknown_filter
    from partnersync import commands, paging, partner
    from partnersync.context import connect

    catalog = partner.load(settings.partners)
    commands_of = [(c.partner, c.name) for c in catalog.commands.values()]
    problem = unknown_filter(catalog, args.partner, args.kind, commands_of, "command kind")
    if problem:
        print(f"partnersync: {problem}", file=sys.stderr)
        return 2
    try:
        asked = window(args, paging.Cursor.parse)
    except ValueError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    cursor, every = asked.cursor, asked.every
    connection = connect(settings)
    shown = 0
    while True:
        got = commands.page(
            connection, catalog, partner_name=args.partner, kind=args.kind, state=args.state,
            since_ms=asked.since_ms, until_ms=asked.until_ms, limit=asked.limit, cursor=cursor,
        )  # fmt: skip
        rows = got.records
        if args.json:
            for r in rows:
                print(to_json({"externalId": r.externalId, "kind": r.kind, "state": r.state,
                               "attempts": r.attempts, "entityId": r.entityId,
                               "createdAt": r.createdAt}))  # fmt: skip
        elif rows or not shown:
            render(["EXTERNAL ID", "KIND", "STATE", "ATTEMPTS", "ENTITY"],
                   [(r.externalId, r.kind, r.state, r.attempts, r.entityId) for r in rows])  # fmt: skip
        shown += len(rows)
        if not (every and got.next):
            break
        cursor = got.next
    if got.next is not None and not every:
        print(f"more: --cursor {got.next.encode()}", file=sys.stderr if args.json else sys.stdout)
    if not args.json:
        print(f"{shown} commands, newest first")
    return 0


def add(sub: Any) -> None:
    command = sub.add_parser("command", help="outbound creates, never booked twice").add_subparsers(
        dest="sub", required=True
    )
    cs = command.add_parser("submit", help="journal and send a create")
    cs.add_argument(
        "kind",
        help="natural-person, legal-entity, customer, customer-product, onboarding, offboarding, document, transfer, traditional-order, digital-order",
    )
    cs.add_argument(
        "--data",
        required=True,
        help="the create body as JSON, or @file.json (no externalId: it is derived)",
    )
    cs.add_argument("--key", help="your idempotency key for this intent (recommended)")
    cs.add_argument(
        "--acting-for",
        "--requestor",
        dest="acting_for",
        metavar="ID",
        help="whom the partner acts for, where a command requires it (Tradevest: the Requestor-ID)",
    )
    cs.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait for the outcome: REJECTED, or ACCEPTED and the entity's final status "
        "(exit 1 when either failed, e.g. a transfer that ends INVALID)",
    )
    cs.add_argument("--json", action="store_true")
    cs.set_defaults(func=cmd_command_submit)
    csh = command.add_parser("show", help="the whole story of one command")
    csh.add_argument("external_id")
    csh.add_argument("--json", action="store_true")
    csh.set_defaults(func=cmd_command_show)
    cl = command.add_parser("list", help="journaled commands, newest first, paged")
    cl.add_argument("--state", choices=["PENDING_SEND", "SENT", "UNKNOWN", "ACCEPTED", "REJECTED"])
    cl.add_argument("--partner")
    cl.add_argument("--kind", help="a command kind (transfer, cash-transfer, …)")
    cl.add_argument("--since", help="submitted since: 30m, 2h, 7d or an ISO date-time")
    cl.add_argument("--until", help="submitted before: 30m, 2h, 7d or an ISO date-time")
    cl.add_argument("--limit", type=int, help="commands per page (default 50; --json alone: all)")
    cl.add_argument("--cursor", help="the page after the one that printed this cursor")
    cl.add_argument("--all", action="store_true", help="every page, one after the other")
    cl.add_argument("--json", action="store_true", help="one JSON object per line")
    cl.set_defaults(func=cmd_command_list)
