"""`partnersync endpoints`: the team's own services that subscribe to the mirror's changes
(outbound webhooks, signed per Standard Webhooks)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from cli.common import connect_redis, to_json
from cli.table import render
from partnersync.config import Settings


def cmd_endpoints(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import endpoints

    connection = connect_redis(settings)
    try:
        return _run(args, settings, connection)
    except endpoints.EndpointError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings, connection: Any) -> int:
    import httpx

    from partnersync import endpoints, outbound, partner

    outbox = outbound.Outbox(connection, lease_ms=settings.lease_ms,
                             attempts=settings.endpoint_attempts,
            senders=settings.senders)  # fmt: skip
    if args.sub == "add":
        catalog = partner.load(settings.partners)
        events = endpoints.check_events(args.events.split(","), catalog.kinds)
        made = endpoints.add(connection, args.url, events)
        _show_secret(made, "added", args.json)
    elif args.sub == "list":
        _list(connection, outbox, args.json)
    elif args.sub == "remove":
        endpoints.remove(connection, args.id)
        outbox.forget(args.id)
        print(f"removed {args.id} and what was queued for it")
    elif args.sub == "rotate-secret":
        _show_secret(endpoints.rotate(connection, args.id), "rotated", args.json)
    elif args.sub == "enable":
        endpoints.enable(connection, args.id)
        outbox.kick(settings.queue)
        print(f"enabled {args.id}: what queued meanwhile goes now, in order per entity")
    elif args.sub == "dead-letters":
        endpoints.get(connection, args.id)
        letters = outbox.letters(args.id)
        if args.json:
            for x in letters:
                print(to_json(x))
        else:
            render(["ENTITY", "CHANGE", "TYPE", "ATTEMPTS", "ERROR", "AT"],
                   [(x.entity, x.changeId, x.type, x.attempts, x.error, x.at.isoformat())
                    for x in letters], whole=("ENTITY", "CHANGE"))  # fmt: skip
            print(f"{len(letters)} dead letters (each holds its entity's later changes back)")
    elif args.sub in ("replay", "purge"):
        return _release(args, settings, outbox)
    elif args.sub == "test":
        endpoint = endpoints.get(connection, args.id)
        started = time.perf_counter()
        try:
            answer = endpoints.ping(endpoint, settings.http_timeout_s)
        except httpx.HTTPError as exc:
            print(f"partnersync: {endpoint.url}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        ms = (time.perf_counter() - started) * 1000
        excerpt = answer.text[:200].replace("\n", " ")
        print(f"HTTP {answer.status_code} in {ms:.0f} ms from {endpoint.url}: {excerpt}")
        return 0 if answer.is_success else 1
    return 0


def _list(connection: Any, outbox: Any, as_json: bool) -> None:
    from partnersync import endpoints, outbound

    found = endpoints.listed(connection)
    state = outbox.state([e.id for e in found])
    rows = []
    for e in found:
        s = state[e.id]
        shown = {"id": e.id, "url": e.url, "events": e.events,
                 "state": outbound.condition(e, s),
                 "disabledReason": e.disabledReason, "waiting": s.waiting,
                 "deadLetters": s.dead, "lagSeconds": round(s.lag_s, 3),
                 "secrets": len(e.secrets)}  # fmt: skip
        if as_json:
            print(to_json(shown))
        rows.append(shown)
    if not as_json:
        render(["ID", "URL", "EVENTS", "STATE", "WAITING", "DEAD", "LAG", "SECRETS"],
               [(r["id"], r["url"], ",".join(r["events"]), r["state"], r["waiting"],
                 r["deadLetters"], f"{r['lagSeconds']:.1f}s", r["secrets"]) for r in rows],
               whole=("ID",))  # fmt: skip
        print(f"{len(found)} endpoints")


def _release(args: argparse.Namespace, settings: Settings, outbox: Any) -> int:
    """Replay (sent again, a fresh budget) or purge (dropped) dead letters; either way the
    entity's later changes go on behind it."""
    from partnersync import endpoints

    endpoints.get(outbox.connection, args.id)
    chosen = [x.entity for x in outbox.letters(args.id)] if args.all else args.entities
    if not chosen:
        print("partnersync: name the entities (or --all)", file=sys.stderr)
        return 2
    done = [e for e in chosen if outbox.release(args.id, e, purge=args.sub == "purge")]
    missing = sorted(set(chosen) - set(done))
    if done and args.sub == "replay":
        outbox.kick(settings.queue)
    print(
        f"{'replayed' if args.sub == 'replay' else 'purged'} {len(done)} dead letters of {args.id}"
    )
    for entity in missing:
        print(f"partnersync: no dead letter of {args.id} for {entity}", file=sys.stderr)
    return 1 if missing else 0


def _show_secret(endpoint: Any, what: str, as_json: bool) -> None:
    """The newest secret, shown this once (list never shows it)."""
    if as_json:
        print(to_json({"id": endpoint.id, "url": endpoint.url, "events": endpoint.events,
                       "secret": endpoint.secrets[0]}))  # fmt: skip
        return
    print(f"{what} {endpoint.id} → {endpoint.url} ({', '.join(endpoint.events)})")
    print(f"signing secret (shown once): {endpoint.secrets[0]}")
    if len(endpoint.secrets) > 1:
        print("the previous secret signs too until the next rotation")


def add(sub: Any) -> None:
    ep = sub.add_parser(
        "endpoints", help="your services' webhook endpoints for the mirror's changes"
    )
    es = ep.add_subparsers(dest="sub", required=True)
    a = es.add_parser("add", help="subscribe a URL to changes")
    a.add_argument("url")
    a.add_argument("--events", required=True,
                   help="comma-separated partner.kind.status patterns, * for any part "
                        "(e.g. 'tradevest.transfer.*,saxo.cash-transfer.Successful')")  # fmt: skip
    a.add_argument("--json", action="store_true")
    ls = es.add_parser("list")
    ls.add_argument("--json", action="store_true")
    rm = es.add_parser("remove")
    rm.add_argument("id")
    rot = es.add_parser("rotate-secret", help="a new signing secret; the previous one still signs")
    rot.add_argument("id")
    rot.add_argument("--json", action="store_true")
    t = es.add_parser("test", help="send a signed ping and show the answer")
    t.add_argument("id")
    en = es.add_parser("enable", help="resume a disabled endpoint (what queued meanwhile goes)")
    en.add_argument("id")
    dl = es.add_parser("dead-letters", help="the changes an endpoint did not take")
    dl.add_argument("id")
    dl.add_argument("--json", action="store_true")
    for name, what in (("replay", "send dead letters again"), ("purge", "drop dead letters")):
        rp = es.add_parser(name, help=f"{what}; the entity's later changes go on behind")
        rp.add_argument("id")
        rp.add_argument("entities", nargs="*", help="entity keys of the letters")
        rp.add_argument("--all", action="store_true", help="every dead letter of the endpoint")
    ep.set_defaults(func=cmd_endpoints)
