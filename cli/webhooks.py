"""`partnersync register-webhooks`: Tradevest's webhook subscriptions."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from partners.tradevest.settings import TradevestSettings
from partnersync.config import Settings


def cmd_register(args: argparse.Namespace, settings: Settings) -> int:
    from partners.tradevest.registration import RegistrationError, register
    from partnersync.errors import PartnerError, Retryable

    url = args.url or settings.public_url
    if not url:
        print(
            "partnersync: register-webhooks needs --url (the receiver's public base URL) or "
            "PARTNERSYNC_PUBLIC_URL",
            file=sys.stderr,
        )
        return 2
    try:
        report = asyncio.run(register(settings, url, check=args.check))
    except RegistrationError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    except (PartnerError, Retryable) as exc:
        print(
            f"partnersync: Tradevest at {TradevestSettings.of(settings).base_url}: {exc}",
            file=sys.stderr,
        )
        return 1
    drift = [d for d in report if d.problem != "ok"]
    for d in report:
        verb = (
            "ok"
            if d.problem == "ok"
            else (f"drift: {d.problem}" if args.check else f"registered ({d.problem})")
        )
        print(f"{d.event_type:<45} {verb:<22} {d.url}")
    if args.check and drift:
        return 1
    return 0


def add(sub: Any) -> None:
    reg = sub.add_parser("register-webhooks", help="register every event type at Tradevest")
    reg.add_argument(
        "--url", help="the receiver's public base URL (https://…); default PARTNERSYNC_PUBLIC_URL"
    )
    reg.add_argument("--check", action="store_true", help="report drift, change nothing")
    reg.set_defaults(func=cmd_register)
