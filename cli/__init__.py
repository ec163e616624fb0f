"""The `partnersync` command line: one module per command group.

Each module has `add(sub)`, which registers its commands with their handlers; a partner
package adds its own (`Partner.cli`) when it is configured. `main` loads the settings once,
parses, and turns the errors a user can cause into a message and an exit
code (2: bad input or configuration, 1: a partner's refusal, 3: Redis unreachable).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from cli import (
    backfill,
    bench,
    command,
    console,
    dlq,
    endpoints,
    entities,
    processes,
    status,
    webhooks,
)
from cli import (
    config as config_table,
)
from partnersync import config, partner
from partnersync.config import ConfigError

GROUPS = (
    processes, webhooks, backfill, entities, dlq, command, endpoints, status, console, bench,
    config_table,
)  # fmt: skip


class Parser(argparse.ArgumentParser):
    """argparse, except that an argument starting with a single '-' that names none of the
    command's short options is a value: Saxo's keys are URL-safe base64 and may start with
    '-' (`entities find -FWu…==`), and argparse would refuse them as unknown options unless
    `--` came first. Arguments starting with '--' are argparse's as before, so a mistyped
    long option still fails (a key starting with '--' still needs `--` before it).
    Subcommands inherit the class (add_subparsers defaults to the parser's own type)."""

    def _parse_optional(self, arg_string: str) -> Any:
        # None means "a positional" in every argparse since 3.2 (the rest of the method's
        # return type changed in 3.12, so only that answer is given here)
        if self._is_value(arg_string):
            return None
        return super()._parse_optional(arg_string)

    def _is_value(self, arg: str) -> bool:
        if len(arg) < 2 or arg[0] not in self.prefix_chars or arg[1] in self.prefix_chars:
            return False
        options = self._option_string_actions
        if arg.split("=", 1)[0] in options:
            return False
        short = options.get(arg[:2])  # '-ofile': a short option with its value attached
        return short is None or short.nargs == 0


def parser(partners: Sequence[str] = config.DEFAULT_PARTNERS) -> argparse.ArgumentParser:
    """The commands of the engine and of the partner packages named."""
    from importlib.metadata import PackageNotFoundError, version

    p = Parser(
        prog="partnersync",
        description="Webhook-driven event processor for brokerage and banking partner APIs.",
    )
    try:
        p.add_argument(
            "--version", action="version", version=f"partnersync {version('partnersync')}"
        )
    except PackageNotFoundError:  # run from a checkout without installing
        p.add_argument("--version", action="version", version="partnersync (not installed)")
    sub = p.add_subparsers(dest="command", required=True)

    for group in GROUPS:
        group.add(sub)
    for module in partners:
        try:
            add = config.partner_module(module).cli
        except ConfigError:
            continue  # main reports it, once the arguments are read
        if add is not None:
            add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings: config.Settings | None = config.load()
        problem = None
    except ConfigError as exc:
        settings, problem = None, exc
    args = parser(settings.partners if settings else config.DEFAULT_PARTNERS).parse_args(argv)
    try:
        if problem is not None:
            raise problem
        assert settings is not None
        partner.load(settings.partners)  # their dictionaries: stored values read with them
        return int(args.func(args, settings) or 0)
    except ConfigError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`partnersync entities list | head`): not an error; stdout is
        # pointed at devnull so the interpreter's final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        import httpx
        from redis.exceptions import ConnectionError as RedisConnectionError

        from partnersync import redisurl
        from partnersync.errors import NotFound, PartnerError, Retryable

        if isinstance(exc, PartnerError | Retryable | NotFound | httpx.HTTPError):
            # a partner's refusal or an unreachable partner is an answer, not a crash
            print(f"partnersync: {args.command}: partner error: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, RedisConnectionError):
            print(
                f"partnersync: cannot reach Redis at {redisurl.display((settings and settings.redis_url) or '')}: "
                f"{exc}",
                file=sys.stderr,
            )
            return 3
        raise
