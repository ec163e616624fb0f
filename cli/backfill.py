"""`partnersync backfill`: import what the partners already hold (partnersync/backfill.py)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from cli.common import to_json
from partnersync.config import Settings


def _progress(kind: str, tally: Any) -> None:
    """One line per kind, redrawn in place on a terminal; a line per page elsewhere."""
    line = f"{kind:<22} {tally.listed:>8} listed  {tally.new:>8} new  page {tally.pages}"
    if sys.stderr.isatty():
        print(f"\r{line}", end="", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr)


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import backfill, context, partner

    catalog = partner.load(settings.partners)
    chosen = [p for p in catalog.partners.values() if p.listings]
    if args.partner:
        chosen = [p for p in chosen if p.name == args.partner]
        if not chosen:
            with_listings = ", ".join(p.name for p in catalog.partners.values() if p.listings)
            print(f"partnersync: backfill: no partner {args.partner!r} with list endpoints "
                  f"(configured and listable: {with_listings or 'none'})", file=sys.stderr)  # fmt: skip
            return 2
    ctx = context.Context(settings, context.connect(settings))
    runs = []
    try:
        for p in chosen:
            listings = [x for x in p.listings if not args.kind or x.kind in args.kind]
            unknown = set(args.kind or ()) - {x.kind for x in p.listings}
            if args.partner and unknown:
                print(f"partnersync: backfill: {p.name} lists no {', '.join(sorted(unknown))} "
                      f"(it lists {', '.join(x.kind for x in p.listings)})", file=sys.stderr)  # fmt: skip
                return 2
            if not listings:
                continue
            runs.append(ctx.run(backfill.backfill(
                ctx.connection, ctx.workqueue, p.name, ctx.clients[p.name], listings,
                restart=args.restart, every=args.all, progress=_progress,
            )))  # fmt: skip
            if sys.stderr.isatty():
                print(file=sys.stderr)
        pending = _wait(ctx, [k for r in runs for k in r.touched], args.wait)
    except KeyboardInterrupt:
        print("\npartnersync: backfill interrupted: run it again to resume where it stopped "
              "(--restart starts over)", file=sys.stderr)  # fmt: skip
        return 130
    finally:
        ctx.close()
    summary = [
        {"partner": r.partner, "kind": kind, "listed": t.listed, "new": t.new,
         "pages": t.pages, "resumed": t.resumed}
        for r in runs for kind, t in r.tallies.items()
    ]  # fmt: skip
    if args.json:
        print(to_json({"kinds": summary, "stillDue": pending}))
    else:
        for row in summary:
            resumed = "  (resumed)" if row["resumed"] else ""
            print(f"{row['partner']}:{row['kind']:<22} {row['listed']:>8} listed "
                  f"{row['new']:>8} new{resumed}")  # fmt: skip
        touched = sum(len(r.touched) for r in runs)
        tail = f"; {pending} still due after {args.wait:g} s" if args.wait else ""
        print(f"{touched} entities marked due for reconcile (the worker pool fetches them){tail}")
    return 0


def _wait(ctx: Any, touched: list[str], seconds: float) -> int:
    """Wait up to `seconds` for the worker pool to have reconciled `touched`; how many are
    still due."""
    if not seconds or not touched:
        return 0
    deadline = time.monotonic() + seconds
    left = touched
    while left and time.monotonic() < deadline:
        left = ctx.workqueue.due_among(left)
        if left:
            time.sleep(0.2)
    return len(left)


def add(sub: Any) -> None:
    bf = sub.add_parser(
        "backfill", help="import what the partners already hold (their list endpoints)"
    )
    bf.add_argument("--partner", help="one partner (default: every one with list endpoints)")
    bf.add_argument("--kind", action="append", help="only this entity kind (repeatable)")
    bf.add_argument("--all", action="store_true",
                    help="mark every listed entity due, stored ones too (a re-sync)")  # fmt: skip
    bf.add_argument("--restart", action="store_true",
                    help="start over instead of resuming an interrupted run")  # fmt: skip
    bf.add_argument("--wait", type=float, default=0.0, metavar="S",
                    help="wait up to S seconds for the workers to reconcile what it found")  # fmt: skip
    bf.add_argument("--json", action="store_true")
    bf.set_defaults(func=cmd_backfill)
