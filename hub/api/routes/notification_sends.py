"""POST /v1/notifications: tell a topic's subscribers (or named people) something.

The busiest route of the API, so it is written for speed (bench/api_load.py measures it
beside the minimal accept path, bench/api_reference.py): the body is parsed on the event
loop, then ONE trip to a worker thread does the whole database part in ONE transaction —
check, insert, and the Idempotency-Key stored with its answer (hub.services.idempotency
`remember`) — and enqueues the fan-out after the commit. A second request with the same key
waits for that commit and replays its answer. FastAPI's per-request session dependency
would cost two more thread hops, and a response model a second validation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError

from hub.api import errors
from hub.domain import Scope
from hub.runtime import Runtime
from hub.schemas.notifications import (
    NOTIFICATION_EXAMPLE,
    SCHEDULED_NOTIFICATION_EXAMPLE,
    NotificationAccepted,
    NotificationIn,
)
from hub.services import idempotency, notifications, templates
from hub.services.actor import Actor
from hub.services.errors import HubError
from hub.web.deps import IdempotencyKey, NotifyScope, RuntimeDep, actor_for

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])

# Where a change to an inline recipient, or a scheduled notification, says it came from.
SOURCE = "api.notify"


NotificationBody = Annotated[
    NotificationIn,
    Body(
        openapi_examples={
            "invoice": {
                "summary": "An invoice to a contact, and to one named inline",
                "value": NOTIFICATION_EXAMPLE,
            },
            "scheduled": {
                "summary": "Held until an instant; cancel it before then",
                "value": SCHEDULED_NOTIFICATION_EXAMPLE,
            },
        }
    ),
]


@dataclass(frozen=True, slots=True)
class _Key:
    owner: str
    key: str
    digest: str


@router.post(
    "",
    status_code=202,
    response_model=NotificationAccepted,
    operation_id="notifications.create",
    summary="Send a notification",
    responses={
        **errors.TOO_LARGE,
        **errors.conflict(
            "A request with this Idempotency-Key was left unanswered less than a minute ago"
        ),
    },
)
async def post_notification(
    body: NotificationBody,
    request: Request,
    principal: NotifyScope,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Send a notification.

    Accepted (202) only once the notification is committed; fan-out follows in workers.
    Recipients may be named by external id or inline (created or changed on the way in, on
    their timelines with this API key as the actor). With `send_at` it is scheduled. With an
    `Idempotency-Key`, a retry of the same request answers the first answer again
    (`Idempotent-Replayed: true`), even while the first is still being committed.
    """
    key = None
    if idempotency_key is not None:
        digest = idempotency.request_hash("POST", "/v1/notifications", body.model_dump(mode="json"))
        key = _Key(f"key:{principal.name}", idempotency_key, digest)
    actor = actor_for(request, principal, SOURCE)
    may_change = principal.allows(Scope.CONTACTS)
    status, answer, replayed = await run_in_threadpool(
        _accept, runtime, body, principal.name, actor, key, may_change
    )
    headers = {"Location": f"/v1/notifications/{answer.get('id')}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        json.dumps(answer, separators=(",", ":")).encode(),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def _accept(
    runtime: Runtime,
    body: NotificationIn,
    name: str,
    actor: Actor,
    key: _Key | None,
    may_change: bool,
) -> tuple[int, dict[str, Any], bool]:
    """(status, answer, replayed), all in one transaction; the fan-out enqueued after it."""
    if body.content is not None:
        # Tried in a render process (up to its deadline) before the transaction begins: on
        # SQLite that holds the one write lock every worker needs. The check inside then
        # finds it in the cache.
        variants = templates.variants_of(body.content)
        templates.check(runtime.render_processes, "inline", variants, "content", data=body.data)
    with runtime.sessions() as db:
        for attempt in (1, 2):
            try:
                accepted = notifications.accept(
                    db,
                    body,
                    source=f"api:{name}",
                    processes=runtime.render_processes,
                    actor=actor,
                    allow_private_webhooks=runtime.settings.webhook_allow_private,
                    may_change_contacts=may_change,
                )
                answer = NotificationAccepted(
                    id=accepted.id,
                    state=accepted.state,
                    topic=body.topic,
                    created_at=accepted.created_at,
                    send_at=accepted.send_at,
                ).model_dump(mode="json")
                if key is not None:
                    idempotency.remember(
                        db,
                        owner=key.owner,
                        key=key.key,
                        digest=key.digest,
                        status_code=202,
                        body=answer,
                    )
                db.commit()
                break
            except IntegrityError:
                # The key was taken meanwhile (or an inline recipient created by a request
                # beside this one): answer as the key's first request did, else once more.
                db.rollback()
                replay = _stored(db, key)
                if replay is not None:
                    return replay
                if attempt == 2:
                    raise
            except HubError:
                # A retry whose first request succeeded replays, even if a check would now fail
                db.rollback()
                replay = _stored(db, key)
                if replay is not None:
                    return replay
                raise
    if accepted.send_at is None:  # a scheduled one is started by the sweeper when due
        runtime.enqueuer.try_fan_out(accepted.id)
    return 202, answer, False


def _stored(db: Any, key: _Key | None) -> tuple[int, dict[str, Any], bool] | None:
    if key is None:
        return None
    replay = idempotency.stored(db, owner=key.owner, key=key.key, digest=key.digest)
    return None if replay is None else (replay.status_code, replay.body, True)
