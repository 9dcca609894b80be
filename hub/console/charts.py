"""Charts as server-rendered SVG: a pure function from figures to markup, no script.

The drawing scales with its `viewBox` (a 390 px phone shows the whole of it), carries its
own `<title>` and `<desc>` and a `role="img"` with a label, and each line keeps its figures
in `data-values`, so a test reads back what was drawn. The page puts a table of the same
figures beside it for screen readers; the legend is HTML (`legend_swatch`), so it stays
readable however small the drawing gets.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 480, 270
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 14, 46
FONT = 16
INK, GRID = "#1a1a1a", "#d4d4d4"


@dataclass(frozen=True)
class Line:
    key: str  # `sent`, `delivered`...: the data-series attribute
    label: str
    values: list[int]  # one per point; cumulative figures never go down
    colour: str
    dash: str = ""  # a stroke-dasharray: lines differ by more than their colour


# The report's lines: colours with at least 3:1 against white, and each its own dash.
STYLES: dict[str, tuple[str, str]] = {
    "sent": ("#1d4ed8", ""),
    "delivered": ("#15803d", "10 4"),
    "bounced": ("#b45309", "3 3"),
    "failed": ("#b91c1c", "10 3 2 3"),
    "deferred": ("#6b21a8", "2 6"),
    # Engagement's chart: people's first opens and clicks per step.
    "opens": ("#1d4ed8", ""),
    "clicks": ("#b45309", "10 4"),
}


def line_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    points: list[dt.datetime],
    lines: list[Line],
    daily: bool = False,
) -> Markup:
    """`lines` over `points` (UTC) as an SVG element; `daily` labels the axis with dates only.

    Raises ValueError when a line's values do not match the points.
    """
    if len(points) < 2:
        raise ValueError("a line chart needs at least two points")
    for line in lines:
        if len(line.values) != len(points):
            raise ValueError(f"{line.key} has {len(line.values)} values for {len(points)} points")
    top = max((max(line.values) for line in lines), default=0)
    ticks = nice_ticks(top)
    ceiling = ticks[-1] or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    first, last = points[0], points[-1]
    span = (last - first).total_seconds() or 1.0

    def x(at: dt.datetime) -> float:
        return LEFT + plot_w * (at - first).total_seconds() / span

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / ceiling)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'aria-describedby="{escape(chart_id)}-desc" preserveAspectRatio="xMidYMid meet" '
        f'font-family="system-ui, sans-serif" font-size="{FONT}">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
    ]
    for tick in ticks:
        ty = _n(y(tick))
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty}" y2="{ty}" stroke="{GRID}"/>'
            f'<text x="{LEFT - 6}" y="{ty}" text-anchor="end" dominant-baseline="middle" '
            f'fill="{INK}">{tick:,}</text>'
        )
    for at, text, second in _x_labels(points, daily=daily):
        tx = _n(x(at))
        anchor = "start" if at == first else "end" if at == last else "middle"
        label = f'<tspan x="{tx}" dy="0">{escape(text)}</tspan>'
        if second:
            label += f'<tspan x="{tx}" dy="{FONT + 2}">{escape(second)}</tspan>'
        parts.append(
            f'<line x1="{tx}" x2="{tx}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 5}" '
            f'stroke="{INK}"/><text y="{TOP + plot_h + 20}" text-anchor="{anchor}" '
            f'fill="{INK}">{label}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" '
        f'stroke="{INK}"/>'
    )
    for line in lines:
        coords = " ".join(
            f"{_n(x(at))},{_n(y(v))}" for at, v in zip(points, line.values, strict=True)
        )
        dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
        values = " ".join(str(v) for v in line.values)
        parts.append(
            f'<polyline data-series="{escape(line.key)}" data-values="{values}" '
            f'points="{coords}" fill="none" stroke="{line.colour}" stroke-width="3" '
            f'stroke-linejoin="round"{dash}><title>{escape(line.label)}: '
            f"{line.values[-1]:,}</title></polyline>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def legend_swatch(key: str) -> Markup:
    """A short sample of a line's colour and dash, for the HTML legend beside the chart."""
    colour, dash = STYLES[key]
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return Markup(  # noqa: S704 - our own constants only
        f'<svg xmlns="http://www.w3.org/2000/svg" class="swatch" viewBox="0 0 36 10" '
        f'width="36" height="10" aria-hidden="true" focusable="false"><line x1="0" x2="36" '
        f'y1="5" y2="5" stroke="{colour}" stroke-width="3"{dashed}/></svg>'
    )


def nice_ticks(top: int, most: int = 5) -> list[int]:
    """0 and round steps (1, 2 or 5 times a power of ten) up to at least `top`."""
    if top <= 0:
        return [0, 1]
    rough = top / (most - 1)
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    step = max(int(step), 1)
    count = math.ceil(top / step)
    return [i * step for i in range(count + 1)]


def _x_labels(
    points: list[dt.datetime], *, daily: bool, most: int = 4
) -> list[tuple[dt.datetime, str, str]]:
    """Up to `most` labels spread over the points; the date under a time where it changes."""
    every = max(1, math.ceil((len(points) - 1) / (most - 1)))
    chosen = points[::every]
    if chosen[-1] != points[-1]:
        if len(chosen) > 1 and (points.index(chosen[-1]) > len(points) - 1 - every / 2):
            chosen = chosen[:-1]
        chosen.append(points[-1])
    labels: list[tuple[dt.datetime, str, str]] = []
    day = None
    for at in chosen:
        if daily:
            labels.append((at, f"{at.day} {at:%b}", ""))
            continue
        date = f"{at.day} {at:%b}" if at.date() != day else ""
        labels.append((at, f"{at:%H:%M}", date))
        day = at.date()
    return labels


def _n(value: float) -> str:
    """A coordinate with one decimal at most: small markup, steady output."""
    return f"{value:.1f}".rstrip("0").rstrip(".")
