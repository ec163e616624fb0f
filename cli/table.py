"""Tables that fit: columns sized to the terminal (long cells wrap, nothing shifts), and
at full width when the output is piped, so `grep` and `cut` see whole values."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table


def render(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    file: TextIO | None = None,
    whole: Sequence[str] = ("KEY", "ENTITY", "EXTERNAL ID"),
) -> None:
    """`whole`: columns whose values are never broken (an entity key is copied whole); the
    others fold to make room."""
    out = file or sys.stdout
    cells = [["-" if v is None or v == "" else str(v) for v in row] for row in rows]
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for n, name in enumerate(columns):
        if name in whole:
            widest = max([len(name), *(len(row[n]) for row in cells)])
            table.add_column(name, no_wrap=True, min_width=widest)
        else:
            table.add_column(name, overflow="fold")
    for row in cells:
        table.add_row(*row)
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
