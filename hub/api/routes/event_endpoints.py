"""/v1/event-endpoints: other services hear of deliveries, bounces, STOPs and unsubscribes.

Each endpoint receives the timeline events it names, signed like every Hub webhook
(Standard Webhooks), retried on Standard Webhooks' schedule, with a log of every attempt.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from hub.api import errors
from hub.db.models import EventMessage
from hub.domain import EventMessageState
from hub.events import relay
from hub.schemas.base import Page
from hub.schemas.event_endpoints import (
    EventAttemptOut,
    EventEndpointCreated,
    EventEndpointIn,
    EventEndpointOut,
    EventEndpointPatch,
    EventMessageLog,
    EventMessageOut,
)
from hub.services import event_endpoints
from hub.web.deps import AdminScope, RuntimeDep, SessionDep, actor_for
from hub.web.paging import CursorQuery, Limit, RowId, page_of, position

router = APIRouter(prefix="/v1/event-endpoints", tags=["event endpoints"])
NO_ENDPOINT = errors.not_found("No event endpoint has this id")
NO_MESSAGE = errors.not_found("No event endpoint has this id, or it has no such message")


@router.post(
    "",
    operation_id="event_endpoints.create",
    summary="Register an event endpoint",
    response_model=EventEndpointCreated,
    status_code=201,
    responses=errors.TOO_LARGE,
)
def create_endpoint(
    body: EventEndpointIn,
    request: Request,
    principal: AdminScope,
    db: SessionDep,
    runtime: RuntimeDep,
) -> Any:
    """Register an endpoint. The answer carries its signing secret, this once.

    Each event of the types named is posted to the URL, signed (Standard Webhooks:
    `webhook-id`, `webhook-timestamp`, `webhook-signature`) and retried on failure. Written
    on the audit log. Needs the `admin` scope."""
    endpoint = event_endpoints.create(
        db,
        actor=actor_for(request, principal),
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        secret=body.secret,
        allow_private=runtime.settings.webhook_allow_private,
    )
    db.commit()
    return EventEndpointCreated.model_validate(endpoint, from_attributes=True)


@router.get(
    "",
    operation_id="event_endpoints.list",
    summary="List event endpoints",
    response_model=Page[EventEndpointOut],
)
def list_endpoints(
    _: AdminScope, db: SessionDep, limit: Limit = 100, cursor: CursorQuery = None
) -> Any:
    """Every endpoint, oldest first, a page at a time (`next_cursor`); secrets are never
    shown again. Needs the `admin` scope."""
    rows = event_endpoints.find(db, after_id=position(cursor), limit=limit + 1)
    return page_of(rows, limit, EventEndpointOut.model_validate)


@router.get(
    "/{endpoint_id}",
    operation_id="event_endpoints.get",
    summary="Read an event endpoint",
    response_model=EventEndpointOut,
    responses=NO_ENDPOINT,
)
def get_endpoint(endpoint_id: RowId, _: AdminScope, db: SessionDep) -> Any:
    """Its URL, event types, and whether it is enabled (and if not, why). Needs the `admin`
    scope."""
    return event_endpoints.get(db, endpoint_id)


@router.patch(
    "/{endpoint_id}",
    operation_id="event_endpoints.update",
    summary="Change an event endpoint",
    response_model=EventEndpointOut,
    responses={**NO_ENDPOINT, **errors.TOO_LARGE},
)
def change_endpoint(
    endpoint_id: RowId,
    body: EventEndpointPatch,
    request: Request,
    principal: AdminScope,
    db: SessionDep,
    runtime: RuntimeDep,
) -> Any:
    """Only the fields sent change. Enabling it again sends what waited while it was
    disabled. Written on the audit log. Needs the `admin` scope."""
    endpoint = event_endpoints.update(
        db,
        endpoint_id,
        actor=actor_for(request, principal),
        url=body.url,
        event_types=body.event_types,
        description=body.description if "description" in body.model_fields_set else None,
        enabled=body.enabled,
        allow_private=runtime.settings.webhook_allow_private,
    )
    db.commit()
    return endpoint


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    operation_id="event_endpoints.delete",
    summary="Delete an event endpoint",
    responses={204: {"description": "Deleted"}, **NO_ENDPOINT},
)
def delete_endpoint(
    endpoint_id: RowId, request: Request, principal: AdminScope, db: SessionDep
) -> Response:
    """Stop sending; what was not sent yet, and the log, go with it.

    Written on the audit log. Needs the `admin` scope."""
    event_endpoints.delete(db, endpoint_id, actor=actor_for(request, principal))
    db.commit()
    return Response(status_code=204)


@router.get(
    "/{endpoint_id}/messages",
    operation_id="event_endpoints.list_messages",
    summary="List an endpoint's messages",
    response_model=Page[EventMessageOut],
    responses=NO_ENDPOINT,
)
def list_messages(
    endpoint_id: RowId,
    _: AdminScope,
    db: SessionDep,
    state: Annotated[EventMessageState | None, Query(description="Only this state.")] = None,
    limit: Limit = 100,
    cursor: CursorQuery = None,
) -> Any:
    """The delivery log, newest first, a page at a time (`next_cursor`): each event, its
    state, attempts and last error. Needs the `admin` scope."""
    rows = event_endpoints.messages(
        db, endpoint_id, state=state, before_id=position(cursor), limit=limit + 1
    )
    return page_of(rows, limit, _message_out)


@router.get(
    "/{endpoint_id}/messages/{message_id}",
    operation_id="event_endpoints.get_message",
    summary="Read one message and its attempts",
    response_model=EventMessageLog,
    responses=NO_MESSAGE,
)
def get_message(endpoint_id: RowId, message_id: RowId, _: AdminScope, db: SessionDep) -> Any:
    """One message with every attempt: when, the status it got, the error, how long.

    Needs the `admin` scope."""
    log = event_endpoints.message(db, endpoint_id, message_id)
    return EventMessageLog(
        **_message_out(log.message).model_dump(),
        attempt_log=[EventAttemptOut.model_validate(a) for a in log.attempts],
    )


@router.post(
    "/{endpoint_id}/messages/{message_id}/resend",
    operation_id="event_endpoints.resend_message",
    summary="Send a message again",
    response_model=EventMessageOut,
    responses={**NO_MESSAGE, **errors.conflict("It is still waiting to be sent")},
)
def resend_message(endpoint_id: RowId, message_id: RowId, _: AdminScope, db: SessionDep) -> Any:
    """Send it again from the next sweep, under the same `webhook-id`.

    Needs the `admin` scope."""
    found = event_endpoints.resend(db, endpoint_id, message_id)
    db.commit()
    return _message_out(found)


def _message_out(message: EventMessage) -> EventMessageOut:
    return EventMessageOut(
        id=message.id,
        webhook_id=relay.webhook_id(message.id),
        event_type=message.event_type,
        state=message.state,
        attempts=message.attempts,
        next_attempt_at=message.due_at if message.state is EventMessageState.PENDING else None,
        last_status=message.last_status,
        last_error=message.last_error,
        created_at=message.created_at,
        delivered_at=message.delivered_at,
        payload=message.payload,
    )
