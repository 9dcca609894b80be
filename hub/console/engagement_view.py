"""What the campaign report and the notification page show of engagement: the headline
figures in words, machines' activity by why, and the opens-and-clicks chart with its table.
Both pages render it through the `engagement.html` partial."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from hub.console import charts
from hub.services.engagement_figures import Figures, OverTime

# Why an open or click was judged a machine's, as the page says it.
MACHINE_WORDS = {
    "privacy_proxy": "a privacy proxy fetched the picture for the mail app (Apple Mail, Gmail)",
    "scanner_agent": "a known link checker or script",
    "head_request": "checked without being opened (a HEAD request)",
    "too_soon": "seconds after sending, before anyone could have read it",
    "all_links": "every link of the message followed at once",
    "unknown": "no reason kept",
}
LABELS = {"opens": "Opened (people)", "clicks": "Clicked (people)"}


@dataclass(frozen=True)
class View:
    figures: Figures
    chart: Markup | None
    rows: list[tuple[str, int, int]]  # the chart's figures: the step's end, opens, clicks
    step: str  # "hour", "3 hours"...
    labels: dict[str, str]
    machine_words: dict[str, str]

    def percent(self, value: float | None) -> str:
        return "—" if value is None else f"{value:.1%}"

    def swatch(self, key: str) -> Markup:
        return charts.legend_swatch(key)


def view(figures: Figures, *, chart_id: str = "engagement-chart") -> View:
    over = figures.over_time
    return View(
        figures=figures,
        # One step is a point, not a line: its table says it better.
        chart=chart_of(over, chart_id=chart_id) if over and len(over.opens) > 1 else None,
        rows=_rows(over) if over else [],
        step=_step(over.step_hours) if over else "hour",
        labels=LABELS,
        machine_words=MACHINE_WORDS,
    )


def chart_of(over: OverTime, *, chart_id: str) -> Markup:
    """People's first opens and clicks per step, each count at the end of its step."""
    points = [over.start, *over.ends]
    series = {"opens": over.opens, "clicks": over.clicks}
    lines = [
        charts.Line(
            key=key,
            label=LABELS[key],
            values=[0, *series[key]],
            colour=charts.STYLES[key][0],
            dash=charts.STYLES[key][1],
        )
        for key in LABELS
    ]
    busiest = max(range(len(over.opens)), key=lambda i: over.opens[i] + over.clicks[i])
    description = (
        f"People who first opened and first clicked, per {_step(over.step_hours)}, from "
        f"{over.start:%d %b %H:%M} to {over.ends[-1]:%d %b %H:%M} UTC: "
        f"{sum(over.opens):,} opens and {sum(over.clicks):,} clicks by people in all, the "
        f"most in the {_step(over.step_hours)} to {over.ends[busiest]:%d %b %H:%M} "
        f"({over.opens[busiest]:,} opens, {over.clicks[busiest]:,} clicks)."
    )
    return charts.line_chart(
        chart_id=chart_id,
        title=f"Opens and clicks by people, per {_step(over.step_hours)}",
        description=description,
        points=points,
        lines=lines,
        daily=over.step_hours >= 24,
    )


def _rows(over: OverTime) -> list[tuple[str, int, int]]:
    return [
        (f"{end:%d %b %H:%M}", opens, clicks)
        for end, opens, clicks in zip(over.ends, over.opens, over.clicks, strict=True)
    ]


def _step(hours: int) -> str:
    if hours % (24 * 7) == 0:
        n, unit = hours // (24 * 7), "week"
    elif hours % 24 == 0:
        n, unit = hours // 24, "day"
    else:
        n, unit = hours, "hour"
    return unit if n == 1 else f"{n} {unit}s"


def context(figures: Figures) -> dict[str, Any]:
    """The partial's one variable, as a page passes it on."""
    return {"engagement": view(figures)}
