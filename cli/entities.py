"""`partnersync entities`: the entity store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from cli.common import connect_redis, to_json
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
    records = store.scan(
        connect_redis(settings), partner=args.partner, kind=args.kind, status=args.status
    )
    if args.json:
        for r in records:
            print(to_json(_entity_row(r)))
        return 0
    rows = [
        (
            r.key,
            r.status + ("" if r.knownStatus else " (unknown status)"),
            r.modifiedOn.isoformat() if r.modifiedOn else None,
            r.externalId,
        )
        for r in records
    ]
    render(["KEY", "STATUS", "MODIFIED ON", "EXTERNAL ID"], rows)
    print(f"{len(records)} entities")
    return 0


def unknown_filter(catalog: Any, partner: str | None, kind: str | None) -> str | None:
    """A message naming the known partners or kinds when a filter names none of them
    (`--kind transfers`), rather than an empty listing."""
    if partner and partner not in catalog.partners:
        return f"unknown partner {partner!r}; known: {', '.join(sorted(catalog.partners))}"
    known = sorted({k for p, k in catalog.kinds if not partner or p == partner})
    if kind and kind not in known:
        return f"unknown kind {kind!r}; known: {', '.join(known)}"
    return None


def _rendered_data(record: Any, settings: Settings, *, raw: bool) -> Any:
    """The partner's data as the kind's schema reads it, personal data masked; `raw`
    shows the stored JSON as the partner sent it."""
    from partnersync import partner
    from schemas.sensitive import redact

    if raw or bytes(record.data) == b"null":
        return msgspec.json.decode(record.data)
    kind = partner.load(settings.partners).kinds.get((record.partner, record.kind))
    if kind is None or kind.decoder is None:
        return {"(fields)": "not rendered: no schema for this kind; use --raw"}
    try:
        return redact(kind.decoder.decode(record.data))
    except msgspec.DecodeError:
        return {"(fields)": "not rendered: does not match the schema; use --raw"}


def cmd_entities_show(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import store

    connection = connect_redis(settings)
    record = store.load(connection, [args.key])[0]
    if record is None:
        print(f"partnersync: no entity {args.key!r}", file=sys.stderr)
        return 1
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
    if record.validationError:
        print(
            f"{'validation':<12} {record.validationError.errorType}: {record.validationError.description}"
        )
    for rejection in record.rejections:
        ve = rejection.validationError
        print(
            f"{'rejected':<12} {rejection.at.isoformat()} {ve.errorType if ve else '?'}: {ve.description if ve else ''}"
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
