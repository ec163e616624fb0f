"""`partnersync register-webhooks`: each webhook-pushing partner's subscriptions."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from partnersync.config import Settings


def cmd_register(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import partner
    from partnersync.errors import PartnerError, Retryable
    from partnersync.webhooks import Registration, RegistrationError

    url = args.url or settings.public_url
    if not url:
        print(
            "partnersync: register-webhooks needs --url (the receiver's public base URL) or "
            "PARTNERSYNC_PUBLIC_URL",
            file=sys.stderr,
        )
        return 2
    catalog = partner.load(settings.partners)
    registering = [
        p for p in catalog.partners.values() if p.webhooks is not None and p.webhooks.register
    ]
    if not registering:
        print("partnersync: no partner in PARTNERSYNC_PARTNERS registers webhooks", file=sys.stderr)
        return 2
    if args.types and len(registering) > 1:
        names = ", ".join(p.name for p in registering)
        print(f"partnersync: --types names one partner's event types; {names} register "
              "webhooks (set PARTNERSYNC_PARTNERS to the one meant)", file=sys.stderr)  # fmt: skip
        return 2
    types = tuple(t.strip() for t in (args.types or "").split(",") if t.strip())
    asked = Registration(url, args.check, types, args.remove)
    drifted = False
    rows: list[tuple[str, str, str]] = []
    for p in registering:
        assert p.webhooks is not None and p.webhooks.register is not None
        try:
            report = asyncio.run(p.webhooks.register(settings, asked))
        except RegistrationError as exc:
            _print(rows)
            print(f"partnersync: {p.name}: {exc}", file=sys.stderr)
            return 2
        except (PartnerError, Retryable) as exc:
            _print(rows)
            print(f"partnersync: {p.name} at {p.base_url(settings)}: {exc}", file=sys.stderr)
            return 1
        settled = "absent" if args.remove else "ok"
        rows += [(d.event_type, _verb(d.problem, settled, args), d.url) for d in report]
        drifted |= any(d.problem != settled for d in report)
    _print(rows)
    return 1 if args.check and drifted else 0


def _print(rows: list[tuple[str, str, str]]) -> None:
    """Columns as wide as their values (cli/table.py), an event type never broken."""
    from cli.table import render

    if rows:
        render(["EVENT TYPE", "STATE", "URL"], rows, whole=("EVENT TYPE",))


def _verb(problem: str, settled: str, args: argparse.Namespace) -> str:
    if problem == settled:
        return "ok (absent)" if args.remove else "ok"
    if args.check:
        return f"drift: {problem}"
    return "removed" if args.remove else f"registered ({problem})"


def add(sub: Any) -> None:
    reg = sub.add_parser(
        "register-webhooks", help="register every event type at each partner that pushes them"
    )
    reg.add_argument(
        "--url", help="the receiver's public base URL (https://…); default PARTNERSYNC_PUBLIC_URL"
    )
    reg.add_argument("--check", action="store_true", help="report drift, change nothing")
    reg.add_argument(
        "--types", metavar="T1,T2",
        help="only these event types (the partner's names, comma-separated); default: all",
    )  # fmt: skip
    reg.add_argument(
        "--remove", action="store_true",
        help="delete the registrations of these event types instead (all, without --types)",
    )  # fmt: skip
    reg.set_defaults(func=cmd_register)
