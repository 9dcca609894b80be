"""Console page for a campaign's report: what people did with it first (opened, clicked,
unsubscribed: people apart from machines), then totals overall and by channel, a chart over time,
what waits and until when, what was refused and why, and the failures, each linked to the
person and to its notification. Any signed-in role reads it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from hub.campaigns import ab_results, report, service
from hub.console import charts, engagement_view
from hub.console.auth import StaffDep
from hub.console.pages import page
from hub.db.base import utcnow
from hub.domain import CampaignState
from hub.services import delivery_words, engagement_figures
from hub.services.errors import NotFound
from hub.web.deps import RuntimeDep

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE = 50
REFRESH = 10  # seconds, while the campaign is live: the page reloads itself (no script)
LIVE = (CampaignState.SCHEDULED, CampaignState.SENDING)
CampaignId = Annotated[int, Path(ge=1, le=2**63 - 1)]
After = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
LABELS = {
    "sent": "Sent",
    "delivered": "Delivered",
    "bounced": "Bounced",
    "failed": "Failed",
    "deferred": "Waiting (deferred)",
}


@router.get("/campaigns/{campaign_id}/report")
def campaign_report(
    campaign_id: CampaignId,
    request: Request,
    staff: StaffDep,
    runtime: RuntimeDep,
    after: After = None,
) -> Response:
    now = utcnow()
    with runtime.reads() as session:
        try:
            found = service.get(session, campaign_id)
        except NotFound:
            return page(
                request,
                "campaign_missing.html",
                "No such campaign",
                staff,
                status=404,
                section="campaigns",
                campaign_id=campaign_id,
            )
        figures = engagement_figures.for_campaign(session, found)
        built = report.build(
            session,
            found,
            now=now,
            failures_after=after,
            failures_limit=PAGE,
            left=figures.left,
        )
        runs = service.runs(session, campaign_id)
        ab = ab_results.for_campaign(session, campaign_id)
        live = found.state in LIVE
    return page(
        request,
        "campaign_report.html",
        f"Report: {built.name}",
        staff,
        section="campaigns",
        r=built,
        run_list=runs,
        chart=chart_of(built.timeline),
        figures=figures_of(built.timeline),
        labels=LABELS,
        counted=delivery_words.counted,
        capital=delivery_words.capital,
        swatch=charts.legend_swatch,
        after=after,
        refresh=REFRESH if live else None,
        engagement=engagement_view.view(figures),
        ab=ab,
    )


def chart_of(timeline: report.Timeline | None) -> Any:
    """The cumulative chart, or None before anything happened."""
    if timeline is None:
        return None
    points = [timeline.start, *timeline.ends]
    lines = [
        charts.Line(
            key=key,
            label=LABELS[key],
            values=[0, *timeline.series[key]],
            colour=charts.STYLES[key][0],
            dash=charts.STYLES[key][1],
        )
        for key in report.CHARTED
    ]
    finals = ", ".join(f"{timeline.series[k][-1]:,} {LABELS[k].lower()}" for k in report.CHARTED)
    step = _duration(int(timeline.step.total_seconds()))
    description = (
        f"Cumulative deliveries from {timeline.start:%d %b %H:%M} to "
        f"{timeline.ends[-1]:%d %b %H:%M} UTC, counted every {step}. By the end: {finals}."
    )
    return charts.line_chart(
        chart_id="report-chart",
        title="Deliveries over time, cumulative",
        description=description,
        points=points,
        lines=lines,
        daily=timeline.step.total_seconds() >= 86400,
    )


def figures_of(timeline: report.Timeline | None) -> list[tuple[str, list[int]]]:
    """The chart's figures as table rows: the end of each bucket, and each line's count."""
    if timeline is None:
        return []
    return [
        (f"{end:%d %b %H:%M}", [timeline.series[key][i] for key in report.CHARTED])
        for i, end in enumerate(timeline.ends)
    ]


def _duration(seconds: int) -> str:
    for size, unit in ((86400 * 7, "week"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds % size == 0:
            n = seconds // size
            return f"{unit}" if n == 1 else f"{n} {unit}s"
    return f"{seconds} seconds"
