"""/v1/notifications: read notifications back (sending them: notification_sends.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from hub.db.models import Topic
from hub.domain import Channel, DeliveryState
from hub.schemas.engagement import EngagementOut
from hub.schemas.notifications import NotificationOut
from hub.services import engagement_figures, notifications
from hub.web.deps import NotifyScope, SessionDep
from hub.web.paging import CursorQuery, Limit, RowId, page_of, position

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])

StateQuery = Annotated[DeliveryState | None, Query(description="Only deliveries in this state.")]
ChannelQuery = Annotated[Channel | None, Query(description="Only this channel's deliveries.")]


@router.get("/{notification_id}", response_model=NotificationOut)
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
