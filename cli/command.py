"""`partnersync command`: outbound creates, journaled, never booked twice."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.common import to_json
from partnersync import replies
from partnersync.config import Settings


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
            requestor_id=args.requestor,
            settings=settings,
        )
    except commands.CommandError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    if args.wait:
        record = commands.wait(connection, record.externalId, args.wait) or record
    if args.json:
        print(
            to_json(
                {
                    "externalId": record.externalId,
                    "created": created,
                    "state": record.state,
                    "entityId": record.entityId,
                }
            )
        )
    else:
        verb = "submitted" if created else "already submitted (nothing sent again)"
        print(
            f"{record.externalId}  {verb}  state {record.state}"
            + (f"  entity {record.entityId}" if record.entityId else "")
        )
    return 0 if record.state != "REJECTED" else 1


def cmd_command_show(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import commands, keys, partner, store
    from partnersync.context import connect

    connection = connect(settings)
    record = commands.load(connection, args.external_id)
    if record is None:
        print(f"partnersync: no command with externalId {args.external_id!r}", file=sys.stderr)
        return 1
    kind = partner.load(settings.partners).commands[record.kind]
    entity_key = (
        keys.entity_key(kind.partner, kind.entity_kind, record.entityId)
        if record.entityId
        else store.by_external_id(connection, kind.partner, record.externalId)
    )
    entity = store.load(connection, [entity_key])[0] if entity_key else None
    # The body may hold personal data (names, IBANs): it is never printed.
    story = {
        "externalId": record.externalId, "partner": record.partner, "kind": record.kind,
        "intentKey": record.intentKey, "state": record.state, "attempts": record.attempts,
        "createdAt": record.createdAt, "sentAt": record.sentAt, "updatedAt": record.updatedAt,
        "entityKey": entity_key, "entityStatus": entity.status if entity else None,
        "validationError": entity.validationError if entity else None,
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
    if entity and entity.validationError:
        print(
            f"{'invalid':<15} {entity.validationError.errorType}: {entity.validationError.description}"
        )
    print("history:")
    for attempt in record.history:
        print(f"  {attempt.at.isoformat()}  {attempt.action:<7} {attempt.outcome}")
    return 0


def cmd_command_list(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import commands, keys
    from partnersync.context import connect

    connection = connect(settings)
    ids = replies.texts(connection.zrange(keys.COMMANDS, 0, -1))
    records = [commands.load(connection, i) for i in ids]
    rows = [r for r in records if r is not None and (not args.state or r.state == args.state)]
    for r in rows:
        if args.json:
            print(to_json({"externalId": r.externalId, "kind": r.kind, "state": r.state, "attempts": r.attempts,
                         "entityId": r.entityId, "createdAt": r.createdAt}))  # fmt: skip
        else:
            print(
                f"{r.externalId}  {r.kind:<18} {r.state:<12} attempts {r.attempts}  {r.entityId or '-'}"
            )
    if not args.json:
        print(f"{len(rows)} commands")
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
    cs.add_argument("--requestor", help="Requestor-ID (the acting natural person) where required")
    cs.add_argument(
        "--wait", type=float, default=0, metavar="SECONDS", help="wait for ACCEPTED/REJECTED"
    )
    cs.add_argument("--json", action="store_true")
    cs.set_defaults(func=cmd_command_submit)
    csh = command.add_parser("show", help="the whole story of one command")
    csh.add_argument("external_id")
    csh.add_argument("--json", action="store_true")
    csh.set_defaults(func=cmd_command_show)
    cl = command.add_parser("list", help="journaled commands")
    cl.add_argument("--state", choices=["PENDING_SEND", "SENT", "UNKNOWN", "ACCEPTED", "REJECTED"])
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(func=cmd_command_list)
