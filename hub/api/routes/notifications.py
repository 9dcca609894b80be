"""/v1/notifications: list them, read one back, cancel one before it goes (sending them:
notification_sends.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import AfterValidator, AwareDatetime

from hub.api import errors
from hub.db.base import utcnow
from hub.db.models import Topic
from hub.domain import Channel, DeliveryState, NotificationState, Scope
from hub.fields import TOPIC_KEY
from hub.schemas.base import Page
from hub.schemas.engagement import EngagementOut
from hub.schemas.notification_list import (
    SOURCE_PATTERN,
    NotificationCancelled,
    NotificationSummary,
)
from hub.schemas.notifications import NotificationOut
from hub.services import engagement_figures, notification_list, notification_schedule, notifications
from hub.services.errors import Forbidden
from hub.web.deps import NotifyScope, SessionDep, actor_for
from hub.web.paging import CursorQuery, Limit, RowId, page_of, position

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])


def _in_utc(moment: dt.datetime) -> dt.datetime:
    """An instant a database can compare: year 1 at +14:00 is before any UTC time there is."""
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]


@router.get(
    "",
    response_model=Page[NotificationSummary],
    operation_id="notifications.list",
    summary="List notifications",
)
def list_notifications(
    _: NotifyScope,
    db: SessionDep,
    topic: Annotated[
        str | None, Query(pattern=TOPIC_KEY, description="Only those about this topic (its key).")
    ] = None,
    state: Annotated[
        NotificationState | None,
        Query(description="Only those in this state, e.g. `scheduled` or `cancelled`."),
    ] = None,
    created_after: Annotated[
        Instant | None,
        Query(description="Only those accepted after this instant (with a time zone offset)."),
    ] = None,
    created_before: Annotated[
        Instant | None,
        Query(description="Only those accepted before this instant (with a time zone offset)."),
    ] = None,
    source: Annotated[
        str | None,
        Query(
            max_length=255,
            pattern=SOURCE_PATTERN,
            description="Only those from this source: `api:<key name>` (posted with that API "
            "key) or `campaign:<id>` (that campaign's).",
        ),
    ] = None,
    limit: Limit = 100,
    cursor: CursorQuery = None,
) -> Any:
    """List notifications, newest first.

    Each with its topic, source, state, schedule and its deliveries counted by state.
    Filters combine (all must match); page on with `next_cursor`. A topic or source that
    matches nothing gives an empty page, not an error.
    """
    filters = notification_list.Filters(
        topic=topic,
        state=state,
        created_after=created_after,
        created_before=created_before,
        source=source,
    )
    rows = notification_list.page(db, filters, before_id=position(cursor), limit=limit + 1)
    return page_of(rows, limit, lambda row: row)


@router.get(
    "/{notification_id}",
    response_model=NotificationOut,
    operation_id="notifications.get",
    summary="Read a notification back",
    responses=errors.not_found("No notification has this id"),
)
def get_notification(
    notification_id: RowId,
    _: NotifyScope,
    db: SessionDep,
    limit: Limit = 100,
    cursor: CursorQuery = None,
    state: Annotated[
        DeliveryState | None, Query(description="Only deliveries in this state.")
    ] = None,
    channel: Annotated[Channel | None, Query(description="Only this channel's deliveries.")] = None,
) -> Any:
    """Read a notification back, with its deliveries.

    Its state and schedule, its deliveries counted by state and by channel, a page of the
    deliveries themselves (oldest first; filter by state or channel), and its engagement.
    """
    notification = notifications.get(db, notification_id)
    by_channel = notifications.counts(db, notification_id)
    totals: dict[str, int] = {}
    for states in by_channel.values():
        for name, count in states.items():
            totals[name] = totals.get(name, 0) + count
    rows = notifications.deliveries(
        db,
        notification_id,
        after_id=position(cursor),
        limit=limit + 1,
        state=state,
        channel=channel,
    )
    return NotificationOut(
        id=notification.id,
        topic=db.get_one(Topic, notification.topic_id).key,
        template=notification.template_key,
        source=notification.source,
        state=notification.state,
        created_at=notification.created_at,
        send_at=notification.send_at,
        cancelled_at=notification.cancelled_at,
        fanned_out_at=notification.fanned_out_at,
        counts=totals,
        by_channel=by_channel,
        deliveries=page_of(rows, limit, lambda d: d),
        engagement=EngagementOut.model_validate(
            engagement_figures.for_notification(db, notification)
        ),
    )


@router.post(
    "/{notification_id}/cancel",
    response_model=NotificationCancelled,
    operation_id="notifications.cancel",
    summary="Cancel a notification before it goes",
    responses={
        **errors.not_found("No notification has this id"),
        **errors.conflict(
            "It is already going out (its fan-out has written deliveries, or finished), "
            "or it is a campaign's"
        ),
    },
)
def cancel_notification(
    notification_id: RowId, principal: NotifyScope, db: SessionDep, request: Request
) -> Any:
    """Cancel a notification before it goes.

    A scheduled notification, or one whose fan-out has not written a delivery yet, becomes
    `cancelled` and nothing of it is ever sent; each named recipient's timeline records it.
    Cancelling a cancelled notification answers the same again. Once anything has gone out
    it is 409, saying how many deliveries exist. Only the API key that sent it, or a key
    with the `admin` scope, may cancel it (403). A campaign's notifications are stopped by
    pausing or cancelling the campaign.
    """
    sent_by = notifications.get(db, notification_id).source
    if sent_by != f"api:{principal.name}" and not principal.allows(Scope.ADMIN):
        raise Forbidden(
            f"notification {notification_id} was not sent with this API key; only the key "
            "that sent it, or an admin key, may cancel it"
        )
    cancelled = notification_schedule.cancel(
        db, notification_id, actor=actor_for(request, principal), now=utcnow()
    )
    assert cancelled.cancelled_at is not None  # set by the cancel, or the first one
    answer = NotificationCancelled(
        id=cancelled.id, state=cancelled.state, cancelled_at=cancelled.cancelled_at
    )
    db.commit()
    return answer
