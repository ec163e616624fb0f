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
    from partnersync.webhooks import RegistrationError

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
    drifted = False
    for p in registering:
        assert p.webhooks is not None and p.webhooks.register is not None
        try:
            report = asyncio.run(p.webhooks.register(settings, url, args.check))
        except RegistrationError as exc:
            print(f"partnersync: {p.name}: {exc}", file=sys.stderr)
            return 2
        except (PartnerError, Retryable) as exc:
            print(f"partnersync: {p.name} at {p.base_url(settings)}: {exc}", file=sys.stderr)
            return 1
        for d in report:
            verb = (
                "ok"
                if d.problem == "ok"
                else (f"drift: {d.problem}" if args.check else f"registered ({d.problem})")
            )
            print(f"{d.event_type:<45} {verb:<22} {d.url}")
        drifted |= any(d.problem != "ok" for d in report)
    return 1 if args.check and drifted else 0


def add(sub: Any) -> None:
    reg = sub.add_parser(
        "register-webhooks", help="register every event type at each partner that pushes them"
    )
    reg.add_argument(
        "--url", help="the receiver's public base URL (https://…); default PARTNERSYNC_PUBLIC_URL"
    )
    reg.add_argument("--check", action="store_true", help="report drift, change nothing")
    reg.set_defaults(func=cmd_register)
