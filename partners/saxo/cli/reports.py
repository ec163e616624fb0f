"""`partnersync report` and `partnersync reconcile`: reports from the partners' history services."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from partners.saxo.cli.signups import saxo_tokens, to_json
from partners.saxo.settings import SaxoSettings
from partnersync.config import Settings
from partnersync.context import connect as connect_redis


def cmd_report_unsettled(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from partners.saxo import unsettled
    from partners.saxo.client import SaxoClient

    client_key = args.client_key or SaxoSettings.of(settings).client_key
    if not client_key:
        print("partnersync: --client-key is required (or set SAXO_CLIENT_KEY)", file=sys.stderr)
        return 2

    async def run():
        async with httpx.AsyncClient(timeout=settings.http_timeout_s) as http:
            return await unsettled.build(
                SaxoClient(settings, http, saxo_tokens(settings)), client_key, args.by
            )

    report = asyncio.run(run())  # a partner error is answered by main()
    print(to_json(report.to_builtins()) if args.json else unsettled.render(report))
    return 3 if report.inconsistencies else 0


def cmd_reconcile_transactions(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import date, timedelta

    import httpx

    from partners.saxo import transactions
    from partners.saxo.client import SaxoClient

    client_key = args.client_key or SaxoSettings.of(settings).client_key
    if not client_key:
        print("partnersync: --client-key is required (or set SAXO_CLIENT_KEY)", file=sys.stderr)
        return 2
    try:
        start, end = date.fromisoformat(args.from_), date.fromisoformat(args.to)
    except ValueError as exc:
        print(f"partnersync: --from/--to: {exc}", file=sys.stderr)
        return 2
    connection = connect_redis(settings)

    async def run():
        async with httpx.AsyncClient(timeout=settings.http_timeout_s) as http:
            return await transactions.reconcile(
                SaxoClient(settings, http, saxo_tokens(settings)), connection, client_key=client_key, start=start, end=end,
                grace=timedelta(seconds=args.grace_s), changes_maxlen=settings.changes_maxlen,
            )  # fmt: skip

    result = asyncio.run(run())  # a partner error is answered by main()
    print(to_json(result.to_builtins()) if args.json else transactions.render(result))
    return 0 if not (result.missing or result.unexpected or result.invalid) else 3


def add(sub: Any) -> None:
    report = sub.add_parser(
        "report", help="reports from the partners' history services"
    ).add_subparsers(dest="sub", required=True)
    ru = report.add_parser(
        "unsettled", help="Saxo unsettled amounts: what is owed per currency and value date"
    )
    ru.add_argument("--client-key", help="default: SAXO_CLIENT_KEY (the white-label / IB owner)")
    ru.add_argument(
        "--by", default="currency", choices=["currency", "exchange", "amount-type", "instrument"]
    )
    ru.add_argument("--json", action="store_true")
    ru.set_defaults(func=cmd_report_unsettled)

    recon = sub.add_parser(
        "reconcile", help="compare partner records with what partnersync did"
    ).add_subparsers(dest="sub", required=True)
    rt = recon.add_parser(
        "transactions", help="Saxo Cash Transfer bookings vs the cash transfers we sent"
    )
    rt.add_argument("--from", dest="from_", required=True, help="YYYY-MM-DD")
    rt.add_argument("--to", required=True, help="YYYY-MM-DD")
    rt.add_argument("--client-key", help="default: SAXO_CLIENT_KEY")
    rt.add_argument(
        "--grace-s",
        type=float,
        default=600,
        help="a transfer younger than this may lack its booking",
    )
    rt.add_argument("--json", action="store_true")
    rt.set_defaults(func=cmd_reconcile_transactions)
