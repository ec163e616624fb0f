"""`partnersync dlq`: the dead-letter queue."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from cli.common import connect_redis, to_json
from cli.table import render
from partnersync.config import Settings
from partnersync.dlq import REASONS


def _dlq_filter(args: argparse.Namespace, settings: Settings):
    from datetime import UTC, datetime

    from partnersync import dlq, partner

    now = datetime.now(UTC)
    selected = dlq.parse_filter(args.filter or "", now)
    catalog = partner.load(settings.partners)
    return msgspec.structs.replace(
        selected,
        kind=args.kind or selected.kind,
        error=args.error or selected.error,
        since=dlq.parse_since(args.since, now) if args.since else selected.since,
        reason=args.reason or selected.reason,
    ).checked(dlq.known_kinds(catalog.partners, catalog.kinds))


def cmd_dlq_list(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import dlq, paging

    try:
        selected = _dlq_filter(args, settings)
        if args.limit is not None and args.limit < 1:
            raise ValueError("--limit must be at least 1")
        cursor = paging.Cursor.parse(args.cursor) if args.cursor else None
    except ValueError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    # --json without --limit/--cursor prints every match, as the other listings do
    every = bool(args.all or (args.json and args.limit is None and cursor is None))
    connection = connect_redis(settings)
    letters: list[Any] = []
    while True:  # one page, or every page in turn
        got = dlq.page(connection, selected, limit=args.limit or (500 if every else 50),
                       cursor=cursor)  # fmt: skip
        letters += got.letters
        if args.json:
            for letter in got.letters:
                print(to_json({
                    "id": letter.id, "at": letter.at, "reason": letter.reason,
                    "entity": letter.entity, "error": letter.error,
                    "attempts": letter.attempts, "events": len(letter.events),
                }))  # fmt: skip
        if not (every and got.next):
            break
        cursor = got.next
    if not args.json:
        rows = [(x.id, x.at.isoformat(), x.reason, x.entity, x.error) for x in letters]
        render(["ID", "AT", "REASON", "ENTITY", "ERROR"], rows)
    if got.next is not None and not every:
        print(f"more: --cursor {got.next.encode()}", file=sys.stderr if args.json else sys.stdout)
    if not args.json:
        print(f"{len(letters)} of {got.total} dead letters, newest first")
    return 0


def cmd_dlq_show(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import dlq

    letter = dlq.get(connect_redis(settings), args.id)
    if letter is None:
        print(f"partnersync: no dead letter {args.id!r}", file=sys.stderr)
        return 1
    print(to_json(letter) if args.json else msgspec.json.format(to_json(letter), indent=2))
    return 0


def cmd_dlq_replay(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import dlq, replay

    connection = connect_redis(settings)
    try:
        selected = _dlq_filter(args, settings)
    except ValueError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    filtering = selected != dlq.Filter()
    if not args.ids and not args.all and not filtering:
        print(
            "partnersync: dlq replay needs IDs, --all, or a filter (--kind/--error/--since/--reason/--filter)",
            file=sys.stderr,
        )
        return 2
    ids = args.ids or [
        letter.id for letter in dlq.all_letters(connection) if selected.matches(letter)
    ]
    summary = replay.replay(connection, settings, ids, progress=sys.stderr, by=_who())
    shown = summary.as_dict()
    counts = ", ".join(f"{k}: {v}" for k, v in shown.items() if k != "outcomes")
    print(to_json(shown) if args.json else counts)
    if summary.interrupted:
        print(
            "partnersync: replay interrupted; letters not reached are still in the DLQ, "
            "the requeued ones' entities are due and will be reconciled",
            file=sys.stderr,
        )
        return 130
    return 0 if summary.ok else 1


def _who() -> str:
    """Who replays from the CLI, as the timeline shows it."""
    import getpass

    try:
        return f"{getpass.getuser()} (cli)"
    except (KeyError, OSError):  # no name for this uid
        return "cli"


def cmd_dlq_purge(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import dlq

    connection = connect_redis(settings)
    ids = dlq.ids(connection)
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                f"partnersync: refusing to purge {len(ids)} dead letters without --yes",
                file=sys.stderr,
            )
            return 2
        if input(f"Purge {len(ids)} dead letters? [y/N] ").strip().lower() != "y":
            return 1
    dlq.remove(connection, *ids)
    print(f"purged {len(ids)} dead letters")
    return 0


def add(sub: Any) -> None:
    dlq = sub.add_parser("dlq", help="the dead-letter queue").add_subparsers(
        dest="sub", required=True
    )

    def filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--kind", help="entity kind, e.g. transfer or saxo:cash-transfer")
        p.add_argument("--error", help="substring of the error")
        p.add_argument("--since", help="30m, 2h, 7d or an ISO date-time")
        p.add_argument("--reason", choices=REASONS)
        p.add_argument("--filter", help="the same as one string: kind=…,error=…,since=…,reason=…")

    dl = dlq.add_parser("list")
    filters(dl)
    dl.add_argument("--json", action="store_true")
    dl.add_argument("--limit", type=int, help="letters per page (default 50; --json alone: all)")
    dl.add_argument("--cursor", help="the page after the one that printed this cursor")
    dl.add_argument("--all", action="store_true", help="every page, one after the other")
    dl.set_defaults(func=cmd_dlq_list)
    ds = dlq.add_parser("show")
    ds.add_argument("id")
    ds.add_argument("--json", action="store_true")
    ds.set_defaults(func=cmd_dlq_show)
    dr = dlq.add_parser("replay")
    dr.add_argument("ids", nargs="*")
    dr.add_argument("--all", action="store_true")
    filters(dr)
    dr.add_argument("--json", action="store_true")
    dr.set_defaults(func=cmd_dlq_replay)
    dp = dlq.add_parser("purge")
    dp.add_argument("--yes", action="store_true", help="do not ask")
    dp.set_defaults(func=cmd_dlq_purge)
