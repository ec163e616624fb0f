"""Processes: run (everything, for local use), serve, worker, clock, sandbox."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from partnersync import config
from partnersync.config import Settings


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from cli.supervisor import Supervisor
    from partnersync import log

    log.setup(settings.log_level)
    settings = config.load(state_fallback=False)
    return Supervisor(settings, sandbox=not args.no_sandbox, workers=args.workers).run()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from receiver import server

    config.redis_url(settings)
    return server.serve(settings, args.host or settings.host, args.port or settings.port)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from jobs import worker
    from partnersync import log

    log.setup(settings.log_level)
    config.redis_url(settings)
    if args.single or args.burst:
        worker.run_worker(settings, burst=args.burst)
        return 0
    from partnersync import handlers

    handlers.load(settings.handlers)  # once here: not in every worker it would restart
    return worker.run_pool(settings, args.n)


def cmd_clock(args: argparse.Namespace, settings: Settings) -> int:
    from jobs import clock
    from partnersync import log

    log.setup(settings.log_level)
    config.redis_url(settings)
    return clock.run_clock(settings)


def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    keep_alive = os.environ.get("SANDBOX_KEEP_ALIVE_S", "5")  # uvicorn's default
    if not keep_alive.isdigit():
        print(f"partnersync: SANDBOX_KEEP_ALIVE_S={keep_alive!r}: whole seconds", file=sys.stderr)
        return 2
    uvicorn.run(
        "sandbox.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=int(keep_alive),
    )
    return 0


def add(sub: Any) -> None:
    run = sub.add_parser("run", help="everything for local use (embedded Redis, sandbox)")
    run.add_argument("--no-sandbox", action="store_true", help="do not start the sandbox partners")
    run.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="the receiver (honours PORT and WEB_CONCURRENCY)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="a pool of RQ worker processes")
    worker.add_argument("-n", type=int, default=2, help="worker processes (default 2)")
    worker.add_argument("--single", action="store_true", help="one worker, no supervisor")
    worker.add_argument(
        "--burst", action="store_true", help="one worker; exit when the queue is empty"
    )
    worker.set_defaults(func=cmd_worker)

    clock = sub.add_parser("clock", help="pollers and sweepers")
    clock.set_defaults(func=cmd_clock)

    sandbox = sub.add_parser("sandbox", help="the fake partners")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8900)
    sandbox.set_defaults(func=cmd_sandbox)
