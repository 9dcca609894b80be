"""POST /v1/notifications: tell a topic's subscribers (or named people) something."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from hub.schemas.errors import ErrorOut
from hub.schemas.notifications import (
    NotificationAccepted,
    NotificationIn,
)
from hub.services import idempotency, notifications
from hub.web.deps import IdempotencyKey, NotifyScope, RuntimeDep, SessionDep, actor_for

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])

# Where a change to an inline recipient, or a scheduled notification, says it came from.
SOURCE = "api.notify"


@router.post(
    "",
    status_code=202,
    response_model=NotificationAccepted,
    operation_id="notifications.create",
    responses={
        409: {"model": ErrorOut, "description": "The first request with this key still runs"},
    },
)
def post_notification(
    body: NotificationIn,
    request: Request,
    response: Response,
    principal: NotifyScope,
    db: SessionDep,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Send a notification.

    Accepted (202) only once the notification is committed; fan-out follows in workers.
    Recipients may be named by external id or inline (created or changed on the way in, on
    their timelines with this API key as the actor). With `send_at` it is scheduled.
    """
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
            db,
            body,
            source=f"api:{principal.name}",
            processes=runtime.render_processes,
            actor=actor_for(request, principal, SOURCE),
            allow_private_webhooks=runtime.settings.webhook_allow_private,
        )
        answer = NotificationAccepted(
            id=notification.id,
            state=notification.state,
            topic=body.topic,
            created_at=notification.created_at,
            send_at=notification.send_at,
        ).model_dump(mode="json")
        if idempotency_key is not None:
            idempotency.complete(db, owner=owner, key=idempotency_key, status_code=202, body=answer)
        db.commit()
    except Exception:
        if idempotency_key is not None:
            idempotency.release(db, owner=owner, key=idempotency_key)
        raise
    if notification.send_at is None:  # a scheduled one is started by the sweeper when due
        runtime.enqueuer.try_fan_out(notification.id)
    response.headers["Location"] = f"/v1/notifications/{notification.id}"
    return answer
