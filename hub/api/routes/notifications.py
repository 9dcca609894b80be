"""/v1/notifications: tell a topic's subscribers (or named contacts) something."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse

from hub.db.models import Topic
from hub.domain import Channel, DeliveryState
from hub.schemas.engagement import EngagementOut
from hub.schemas.errors import ErrorOut
from hub.schemas.notifications import (
    NotificationAccepted,
    NotificationIn,
    NotificationOut,
)
from hub.services import engagement_figures, idempotency, notifications
from hub.web.deps import NotifyScope, RuntimeDep, SessionDep
from hub.web.paging import CursorQuery, Limit, RowId, page_of, position

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes the POST safe to retry: the same key and body replay the first "
        "answer for 48 hours; the same key with another body is 422; while the first "
        "request runs, 409.",
    ),
]


StateQuery = Annotated[DeliveryState | None, Query(description="Only deliveries in this state.")]
ChannelQuery = Annotated[Channel | None, Query(description="Only this channel's deliveries.")]


@router.post(
    "",
    status_code=202,
    response_model=NotificationAccepted,
    responses={
        409: {"model": ErrorOut, "description": "The first request with this key still runs"},
    },
)
def post_notification(
    body: NotificationIn,
    response: Response,
    principal: NotifyScope,
    db: SessionDep,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Accepted (202) only once the notification is committed; fan-out follows in workers."""
    owner = f"key:{principal.name}"
    if idempotency_key is not None:
        digest = idempotency.request_hash("POST", "/v1/notifications", body.model_dump(mode="json"))
        replay = idempotency.reserve(db, owner=owner, key=idempotency_key, digest=digest)
        if replay is not None:
            location = {"Location": f"/v1/notifications/{replay.body.get('id')}"}
            return JSONResponse(
                replay.body,
                status_code=replay.status_code,
                headers={"Idempotent-Replayed": "true", **location},
            )
    try:
        notification = notifications.accept(
            db, body, source=f"api:{principal.name}", processes=runtime.render_processes
        )
        answer = NotificationAccepted(
            id=notification.id,
            state=notification.state,
            topic=body.topic,
            created_at=notification.created_at,
        ).model_dump(mode="json")
        if idempotency_key is not None:
            idempotency.complete(db, owner=owner, key=idempotency_key, status_code=202, body=answer)
        db.commit()
    except Exception:
        if idempotency_key is not None:
            idempotency.release(db, owner=owner, key=idempotency_key)
        raise
    runtime.enqueuer.try_fan_out(notification.id)
    response.headers["Location"] = f"/v1/notifications/{notification.id}"
    return answer


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
        fanned_out_at=notification.fanned_out_at,
        counts=totals,
        by_channel=by_channel,
        deliveries=page_of(rows, limit, lambda d: d),
        engagement=EngagementOut.model_validate(
            engagement_figures.for_notification(db, notification)
        ),
    )
