"""`partnersync config`: the configuration table (markdown)."""

from __future__ import annotations

import argparse
from typing import Any

from partnersync import config
from partnersync.config import Settings


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    print("| variable | default | meaning |\n|---|---|---|")
    for env, default in config.variables(settings):
        if isinstance(default, tuple):
            default = ",".join(
                str(int(d) if isinstance(d, float) and d.is_integer() else d) for d in default
            )
        shown = f"`{default}`" if default not in (None, "") else "(unset)"
        print(f"| `{env.name}` | {shown} | {env.doc} |")
    return 0


def add(sub: Any) -> None:
    cfg = sub.add_parser("config", help="print the configuration table (markdown)")
    cfg.set_defaults(func=cmd_config)
