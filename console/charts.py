"""Small server-rendered SVG charts (no script, no chart library): a sparkline of a series
and bars of signed amounts. Values are numbers only; labels are escaped."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup


def sparkline(
    values: Sequence[float], *, width: int = 240, height: int = 40, label: str = ""
) -> Markup:
    if len(values) < 2:
        return Markup('<span class="muted">collecting…</span>')
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}"
        for i, v in enumerate(values)
    )
    title = escape(f"{label}: last {values[-1]:.3g}, min {low:.3g}, max {high:.3g}")
    return Markup(
        f'<svg class="spark" width="{width}" height="{height}" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{points}"/></svg>'
    )


def bars(items: Sequence[tuple[str, float]], *, width: int = 480, bar: int = 18) -> Markup:
    """Horizontal bars around a zero line: negative (owed by you) left, positive right."""
    if not items:
        return Markup('<span class="muted">nothing unsettled</span>')
    most = max(abs(v) for _, v in items) or 1.0
    half = width / 2
    rows = []
    for n, (name, value) in enumerate(items):
        length = abs(value) / most * (half - 4)
        x = half - length if value < 0 else half
        y = n * (bar + 6)
        rows.append(
            f"<g><title>{escape(name)}: {value:,.2f}</title>"
            f'<rect x="{x:.1f}" y="{y}" width="{length:.1f}" height="{bar}" '
            f'class="{"neg" if value < 0 else "pos"}"/>'
            f'<text x="{half + 6 if value < 0 else half - 6}" y="{y + bar - 5}" '
            f'text-anchor="{"start" if value < 0 else "end"}">{escape(name)}</text></g>'
        )
    total = len(items) * (bar + 6)
    return Markup(
        f'<svg class="bars" width="{width}" height="{total}" role="img" aria-label="amounts">'
        f'<line x1="{half}" y1="0" x2="{half}" y2="{total}" stroke="#999"/>{"".join(rows)}</svg>'
    )
