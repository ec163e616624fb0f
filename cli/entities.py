"""`partnersync entities`: the entity store."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any

import msgspec

from cli.common import connect_redis, to_json, window
from cli.table import render
from partnersync.config import Settings


def _entity_row(record: Any) -> dict[str, Any]:
    return {
        "key": record.key,
        "partner": record.partner,
        "kind": record.kind,
        "id": record.id,
        "externalId": record.externalId,
        "status": record.status,
        "modifiedOn": record.modifiedOn,
        "updatedAt": record.updatedAt,
        "knownStatus": record.knownStatus,
        "purged": record.purged,
    }


def cmd_entities_list(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import partner, store

    catalog = partner.load(settings.partners)
    problem = unknown_filter(catalog, args.partner, args.kind)
    if problem:
        print(f"partnersync: {problem}", file=sys.stderr)
        return 2
    try:
        asked = window(args, store.Cursor.parse)
    except ValueError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    cursor, every, limit = asked.cursor, asked.every, asked.limit
    since, until = asked.since_ms, asked.until_ms
    connection = connect_redis(settings)
    shown = 0
    while True:  # one page, or with --all every page in turn
        got = store.page(
            connection, partner=args.partner, kind=args.kind, status=args.status,
            since_ms=since, until_ms=until, limit=limit, cursor=cursor,
        )  # fmt: skip
        shown += len(got.records)
        _print_page(got.records, json=args.json, header=not shown - len(got.records))
        if not (every and got.next):
            break
        cursor = got.next
    if got.next is not None and not every:
        hint = f"more: --cursor {got.next.encode()}"
        print(hint, file=sys.stderr if args.json else sys.stdout)
    if not args.json:
        total = f" of {got.total}" if got.total is not None else ""
        print(f"{shown}{total} entities, most recently updated first")
    return 0


def _print_page(records: list[Any], *, json: bool, header: bool) -> None:
    if json:
        for r in records:
            print(to_json(_entity_row(r)))
        return
    rows = [
        (
            r.key,
            r.status + ("" if r.knownStatus else " (unknown status)"),
            r.updatedAt.isoformat(timespec="seconds"),
            r.externalId,
        )
        for r in records
    ]
    if rows or header:
        render(["KEY", "STATUS", "UPDATED", "EXTERNAL ID"], rows)


def unknown_filter(
    catalog: Any,
    partner: str | None,
    kind: str | None,
    kinds: Iterable[tuple[str, str]] | None = None,
    what: str = "kind",
) -> str | None:
    """A message naming the known partners or kinds when a filter names none of them
    (`--kind transfers`), rather than an empty listing. `kinds`: (partner, kind) pairs to
    check against (default the entity kinds)."""
    if partner and partner not in catalog.partners:
        return f"unknown partner {partner!r}; known: {', '.join(sorted(catalog.partners))}"
    pairs = catalog.kinds if kinds is None else kinds
    known = sorted({k for p, k in pairs if not partner or p == partner})
    if kind and kind not in known:
        return f"unknown {what} {kind!r}; known: {', '.join(known)}"
    return None


def _rendered_data(record: Any, settings: Settings, *, raw: bool) -> Any:
    """The partner's data as the kind's schema reads it, personal data masked; `raw`
    shows the stored JSON as the partner sent it."""
    from partnersync import partner
    from partnersync.masking import masked_data, raw_data

    if raw:
        return raw_data(record)
    shown = masked_data(record, partner.load(settings.partners))
    if isinstance(shown, dict) and "(fields)" in shown:
        shown["(fields)"] += "; use --raw"
    return shown


def cmd_entities_show(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import store

    connection = connect_redis(settings)
    record = store.load(connection, [args.key])[0]
    if record is None:
        gone = store.tombstone(connection, args.key)
        if gone is None:
            print(f"partnersync: no entity {args.key!r}", file=sys.stderr)
            return 1
        if args.json:
            print(to_json({"entity": gone, "evicted": True, "history": []}))
            return 0
        print(
            f"{args.key}: evicted after retention; final status {gone.status} (modifiedOn "
            f"{gone.modifiedOn}, last updated {gone.updatedAt.isoformat()}). Its history is on "
            "the change stream."
        )
        return 0
    history = store.history(connection, args.key)
    data = _rendered_data(record, settings, raw=args.raw)
    if args.json:
        print(
            to_json(
                {
                    "entity": msgspec.structs.replace(
                        record, data=msgspec.Raw(to_json(data).encode())
                    ),
                    "history": history,
                }
            )
        )
        return 0
    row = _entity_row(record)
    for name, value in row.items():
        print(f"{name:<12} {value}")
    print(f"{'data':<12} {to_json(data)}")
    if record.refusal:
        print(f"{'refused':<12} {record.refusal.code}: {record.refusal.description}")
    for rejection in record.rejections:
        ve = rejection.refusal
        print(
            f"{'rejected':<12} {rejection.at.isoformat()} {ve.code if ve else '?'}: {ve.description if ve else ''}"
        )
    print("history:")
    for t in history:
        print(
            f"  {t.at.isoformat()}  {t.from_ or '∅'} → {t.to}  (modifiedOn {t.modifiedOn}, {t.decision}, events {len(t.source)})"
        )
    return 0


def cmd_entities_find(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import partner
    from partnersync.find import find

    found = find(connect_redis(settings), partner.load(settings.partners), args.id)
    if not found:
        print(
            f"partnersync: {args.id!r} is no stored entity's id, externalId, delivery id or "
            "command",
            file=sys.stderr,
        )
        return 1
    if args.json:
        for f in found:
            print(to_json({"what": f.what, "entity": f.entity, "detail": f.detail}))
        return 0
    render(["WHAT", "ENTITY", "DETAIL"], [(f.what, f.entity, f.detail) for f in found])
    return 0


def add(sub: Any) -> None:
    entities = sub.add_parser("entities", help="the entity store").add_subparsers(
        dest="sub", required=True
    )
    el = entities.add_parser("list", help="stored entities")
    el.add_argument("--partner")
    el.add_argument("--kind")
    el.add_argument("--status")
    el.add_argument("--since", help="updated since: 30m, 2h, 7d or an ISO date-time")
    el.add_argument("--until", help="updated before: 30m, 2h, 7d or an ISO date-time")
    el.add_argument(
        "--limit", type=int, help="entities per page (default 50; --json alone prints them all)"
    )
    el.add_argument("--cursor", help="the page after the one that printed this cursor")
    el.add_argument("--all", action="store_true", help="every page, one after the other")
    el.add_argument("--json", action="store_true", help="one JSON object per line")
    el.set_defaults(func=cmd_entities_list)
    ef = entities.add_parser(
        "find", help="what an id is: partner id, externalId, delivery id or command"
    )
    ef.add_argument("id")
    ef.add_argument("--json", action="store_true", help="one JSON object per line")
    ef.set_defaults(func=cmd_entities_find)
    es = entities.add_parser("show", help="one entity and its history")
    es.add_argument("key", help="{partner}:{kind}:{id}")
    es.add_argument("--json", action="store_true")
    es.add_argument(
        "--raw", action="store_true", help="the partner's data as stored, personal data included"
    )
    es.set_defaults(func=cmd_entities_show)
