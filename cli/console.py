"""`partnersync console` (the operator console) and `partnersync console-user` (its users)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from partnersync import config
from partnersync.config import Settings


def cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from cli.common import connect_redis
    from console import users
    from console.app import create_app
    from partnersync import log

    log.setup(settings.log_level)
    config.redis_url(settings)
    try:
        app = create_app(settings, connect_redis(settings))
    except (config.ConfigError, users.UsersError) as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host or settings.console_host,
                port=args.port or settings.console_port, log_config=None, access_log=False)  # fmt: skip
    return 0


def cmd_console_user(args: argparse.Namespace, settings: Settings) -> int:
    from console import users

    path = args.file or settings.console_users
    if not path:
        print("partnersync: set PARTNERSYNC_CONSOLE_USERS (or --file)", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("partnersync: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        users.add(path, args.name, args.role, password)
    except users.UsersError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    print(f"{args.name} ({args.role}) written to {path}; a running console reads it on restart")
    return 0


def add(sub: Any) -> None:
    console = sub.add_parser("console", help="the operator console (web; login required)")
    console.add_argument("--host")
    console.add_argument("--port", type=int)
    console.set_defaults(func=cmd_console)
    user = sub.add_parser(
        "console-user", help="add or change a console user (password from the prompt or stdin)"
    )
    user.add_argument("name")
    user.add_argument("--role", choices=("viewer", "operator"), default="viewer")
    user.add_argument("--file", help="the users file (default PARTNERSYNC_CONSOLE_USERS)")
    user.set_defaults(func=cmd_console_user)
