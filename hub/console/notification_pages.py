"""Console pages for notifications: the list (newest first, a page at a time, by topic, by
state, only those with failures) and one notification with what people did with it (opens,
clicks, unsubscribes) and its deliveries, each with why in words, so a failure is found from
the dashboard in two clicks. Any signed-in role reads them; a marketer or admin may cancel
one that has not gone yet, after a confirmation page."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from hub.console import engagement_view, forms
from hub.console.auth import NotAllowed, SessionsDep, Staff, StaffDep
from hub.console.pages import back_to, page
from hub.db.base import utcnow
from hub.domain import DeliveryState, NotificationState, StaffRole
from hub.runtime import Runtime
from hub.services import (
    audit,
    delivery_words,
    engagement_figures,
    notification_schedule,
    notification_views,
)
from hub.services.errors import HubError
from hub.web.deps import RuntimeDep

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE = 50
Before = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
NotificationId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Show = Literal["all", "failures", "waiting", "refused", "open"]
# The last change of a delivery, named by the state it led to.
CHANGED = {
    DeliveryState.DELIVERED: "delivered",
    DeliveryState.BOUNCED: "bounced",
    DeliveryState.FAILED: "failed",
    DeliveryState.DEFERRED: "held back",
    DeliveryState.SUPPRESSED: "refused",
    DeliveryState.UNKNOWN: "lost track",
    DeliveryState.QUEUED: "queued",
    DeliveryState.SENDING: "claimed",
}
SHOWN: dict[str, tuple[str, tuple[DeliveryState, ...]]] = {
    "all": ("All", ()),
    "failures": ("Failed or bounced", notification_views.FAILURES),
    "waiting": ("Waiting", (DeliveryState.DEFERRED,)),
    "refused": ("Refused", (DeliveryState.SUPPRESSED,)),
    "open": ("Queued or sending", (DeliveryState.QUEUED, DeliveryState.SENDING)),
}
# The list's state filter, in the order a notification goes through them.
STATES = {
    NotificationState.SCHEDULED: "Scheduled (not sent yet)",
    NotificationState.ACCEPTED: "Going out",
    NotificationState.FANNED_OUT: "Gone out",
    NotificationState.CANCELLED: "Cancelled",
}
CANCELS = StaffRole.MARKETER  # the least role that may cancel one


@router.get("/notifications")
def notifications(
    request: Request,
    *,
    staff: StaffDep,
    runtime: RuntimeDep,
    topic: Annotated[str, Query(max_length=100)] = "",
    state: Annotated[str, Query(max_length=32)] = "",
    failing: bool = False,
    before: Before = None,
) -> Response:
    """The newest first; `topic`, `state` and `failing` narrow them, `before` pages. A state
    this version does not know (an old bookmark) shows them all."""
    chosen = next((s for s in NotificationState if s.value == state), None)
    with runtime.reads() as session:
        rows = notification_views.listed(
            session,
            before_id=before,
            limit=PAGE + 1,
            topic=topic or None,
            failing=failing,
            state=chosen,
        )
        topics = notification_views.topic_keys(session)
    older = rows[PAGE - 1].id if len(rows) > PAGE else None
    kept = {"topic": topic, "state": chosen or "", "failing": "true" if failing else ""}
    return page(
        request,
        "notifications.html",
        "Notifications",
        staff,
        section="notifications",
        rows=rows[:PAGE],
        topics=topics,
        topic=topic,
        state=chosen,
        states=STATES,
        failing=failing,
        paged=before is not None,
        newest_url=_url("/console/notifications", kept),
        older_url=_url("/console/notifications", kept | {"before": older}) if older else None,
        short=notification_views.short,
    )


@router.get("/notifications/{notification_id}")
def notification(
    notification_id: NotificationId,
    request: Request,
    *,
    staff: StaffDep,
    runtime: RuntimeDep,
    show: Show = "all",
    after: Before = None,
    cancelled: bool = False,
    problem: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    now = utcnow()
    with runtime.reads() as session:
        found = notification_views.detail(session, notification_id)
        if found is None:
            return page(
                request,
                "notification_missing.html",
                "No such notification",
                staff,
                status=404,
                section="notifications",
                notification_id=notification_id,
            )
        figures = engagement_figures.for_notification(session, found.notification)
        rows = notification_views.deliveries(
            session,
            notification_id,
            after_id=after,
            limit=PAGE + 1,
            states=SHOWN[show][1],
            now=now,
        )
    n = found.notification
    here = f"/console/notifications/{n.id}"
    kept = {"show": "" if show == "all" else show}
    more = rows[PAGE - 1].id if len(rows) > PAGE else None
    return page(
        request,
        "notification.html",
        f"Notification #{n.id}",
        staff,
        section="notifications",
        d=found,
        n=n,
        data=json.dumps(n.data, indent=2, ensure_ascii=False, sort_keys=True),
        rows=rows[:PAGE],
        first_url=_url(here, kept, "#deliveries"),
        next_url=_url(here, kept | {"after": more}, "#deliveries") if more else None,
        show=show,
        shown=SHOWN,
        after=after,
        short=notification_views.short,
        states=delivery_words.STATES,
        capital=delivery_words.capital,
        changed={state.value: words for state, words in CHANGED.items()},
        engagement=engagement_view.view(figures),
        may_cancel=staff.may(CANCELS) and found.cancellable,
        notice="Cancelled: nothing of it will be sent." if cancelled else None,
        errors=[problem] if problem else [],
    )


@router.get("/notifications/{notification_id}/cancel")
def confirm_cancel(
    notification_id: NotificationId, request: Request, *, staff: StaffDep, runtime: RuntimeDep
) -> Response:
    """Are you sure? What cancelling this one means, and the button that does it."""
    if not staff.may(CANCELS):
        raise NotAllowed(CANCELS)
    here = f"/console/notifications/{notification_id}"
    with runtime.reads() as session:
        found = notification_views.detail(session, notification_id)
    if found is None:
        return back_to(here)  # the notification page says there is no such one
    if not found.cancellable:
        why = "it can no longer be cancelled: it is already going out, or is a campaign's"
        return back_to(f"{here}?problem={quote(why)}")
    return page(
        request,
        "notification_cancel.html",
        f"Cancel notification #{notification_id}?",
        staff,
        section="notifications",
        d=found,
        n=found.notification,
    )


@router.post("/notifications/{notification_id}/cancel")
async def cancel(
    notification_id: NotificationId,
    request: Request,
    *,
    staff: StaffDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    """Cancel it (the same as the API's cancel, with the staff member as the actor)."""
    await forms.posted(request, staff, sessions, CANCELS)
    return await run_in_threadpool(_cancel, request, staff, runtime, notification_id)


def _cancel(request: Request, staff: Staff, runtime: Runtime, notification_id: int) -> Response:
    here = f"/console/notifications/{notification_id}"
    try:
        with runtime.sessions() as session:
            actor = forms.staff_actor(request, staff)
            notification_schedule.cancel(session, notification_id, actor=actor, now=utcnow())
            audit.record(
                session,
                actor=actor,
                action=audit.Action.CANCELLED,
                resource=audit.Resource.NOTIFICATION,
                key=str(notification_id),
                after={"state": "cancelled"},
            )
            session.commit()
    except HubError as exc:
        return back_to(f"{here}?problem={quote(exc.message)}")
    return back_to(f"{here}?cancelled=true")


def _url(path: str, query: Mapping[str, object], fragment: str = "") -> str:
    """`path?a=1&b=2#fragment`, leaving out empty values."""
    given = {k: v for k, v in query.items() if v not in ("", None)}
    return f"{path}{'?' + urlencode(given) if given else ''}{fragment}"
