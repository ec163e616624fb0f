"""Tables that fit: columns sized to the terminal (long cells wrap, nothing shifts), and
at full width when the output is piped, so `grep` and `cut` see whole values."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table


def render(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, file: TextIO | None = None
) -> None:
    out = file or sys.stdout
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*("-" if v is None or v == "" else str(v) for v in row))
    terminal = out.isatty()
    # piped: as wide as the widest row, so a value is never wrapped or cut
    width = None if terminal else 10_000
    console = Console(
        file=out, width=width, highlight=False, markup=False, emoji=False,
        soft_wrap=False, color_system="auto" if terminal else None,
    )  # fmt: skip
    with console.capture() as captured:
        console.print(table, crop=False)
    out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
