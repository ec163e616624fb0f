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
    import httpx

    from partnersync import endpoints, partner

    connection = connect_redis(settings)
    try:
        if args.sub == "add":
            catalog = partner.load(settings.partners)
            events = endpoints.check_events(args.events.split(","), catalog.kinds)
            made = endpoints.add(connection, args.url, events)
            _show_secret(made, "added", args.json)
        elif args.sub == "list":
            found = endpoints.listed(connection)
            if args.json:
                for e in found:
                    print(to_json({"id": e.id, "url": e.url, "events": e.events,
                                   "disabled": e.disabled, "secrets": len(e.secrets)}))  # fmt: skip
            else:
                render(["ID", "URL", "EVENTS", "STATE", "SECRETS"],
                       [(e.id, e.url, ",".join(e.events), "disabled" if e.disabled else "active",
                         len(e.secrets)) for e in found], whole=("ID",))  # fmt: skip
                print(f"{len(found)} endpoints")
        elif args.sub == "remove":
            endpoints.remove(connection, args.id)
            print(f"removed {args.id}")
        elif args.sub == "rotate-secret":
            _show_secret(endpoints.rotate(connection, args.id), "rotated", args.json)
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
    except endpoints.EndpointError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    return 0


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
    ep.set_defaults(func=cmd_endpoints)
