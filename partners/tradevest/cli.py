"""Tradevest's own `partnersync` commands (registered when Tradevest is configured):

- `tradevest ex-ante`: the costs of an order before it is placed (`POST /trading/ex-ante`);
  its exAnteId goes on a `traditional-order`. A quote, not a booking: asking again makes
  another, so it is not journaled.
- `tradevest incoming-test-transfer`: a test environment's simulated incoming payment
  (`POST /transfers-test/incoming-transfer`, 202; test environment only); the booking it
  makes reaches the mirror through the transactions sweep.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import msgspec

from partnersync.config import Settings

_EX_ANTE = "/trading/ex-ante"
_TEST_TRANSFER = "/transfers-test/incoming-transfer"


def _read(args: argparse.Namespace, data: type) -> Any:
    """The --data JSON (or @file) as `data`, or None after saying why."""
    from schemas import strict

    raw: str | bytes = args.data
    if isinstance(raw, str) and raw.startswith("@"):
        try:
            with open(raw[1:], "rb") as f:
                raw = f.read()
        except OSError as exc:
            print(f"partnersync: --data {args.data}: {exc.strerror}", file=sys.stderr)
            return None
    try:
        return strict.decode(raw, data)
    except strict.InputError as exc:
        print(f"partnersync: tradevest {args.sub}: {exc}", file=sys.stderr)
        return None


async def _post(settings: Settings, path: str, body: Any, acting_for: str | None) -> Any:
    import httpx

    from partners.tradevest.client import TradevestClient

    async with httpx.AsyncClient(timeout=settings.http_timeout_s) as http:
        client = TradevestClient(settings, http)
        response = await client.request(
            "POST", path, content=msgspec.json.encode(body),
            headers={"Content-Type": "application/json"}, acting_for=acting_for,
        )  # fmt: skip
        client.raise_for(response)
        return msgspec.json.decode(response.content) if response.content.strip() else None


def cmd_tradevest(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.tradevest import commands as tvc

    if args.sub == "ex-ante":
        if not args.acting_for:
            print("partnersync: tradevest ex-ante requires a Requestor-ID (--acting-for "
                  "the acting natural person's id)", file=sys.stderr)  # fmt: skip
            return 2
        request = _read(args, tvc.ExAnteRequest)
        if request is None:
            return 2
        result = asyncio.run(_post(settings, _EX_ANTE, request, args.acting_for))
        if args.json:
            print(msgspec.json.encode(result).decode())
        else:
            total = (result or {}).get("total")
            print(
                f"exAnteId {(result or {}).get('exAnteId')}  total {msgspec.json.encode(total).decode()}"
            )
        return 0
    transfer = _read(args, tvc.IncomingTestTransfer)
    if transfer is None:
        return 2
    asyncio.run(_post(settings, _TEST_TRANSFER, transfer, None))
    print("accepted (202): the booking reaches the mirror with the next transactions sweep")
    return 0


def add(sub: Any) -> None:
    tradevest = sub.add_parser("tradevest", help="Tradevest: ex-ante costs, test transfers")
    actions = tradevest.add_subparsers(dest="sub", required=True)
    ea = actions.add_parser("ex-ante", help="an order's costs before it is placed (exAnteId)")
    ea.add_argument("--data", required=True, help="ExAnteRequest JSON, or @file")
    ea.add_argument("--acting-for", "--requestor", dest="acting_for", metavar="ID",
                    help="the Requestor-ID (the acting natural person)")  # fmt: skip
    ea.add_argument("--json", action="store_true")
    it = actions.add_parser(
        "incoming-test-transfer", help="simulate an incoming payment (test environment only)"
    )
    it.add_argument("--data", required=True,
                    help='{"customerProductId", "amount", "reference"} JSON, or @file')  # fmt: skip
    for parser in (ea, it):
        parser.set_defaults(func=cmd_tradevest)
