"""Other services' endpoints for timeline events, and the log of what was sent to them.

Creating, changing and deleting an endpoint is written to the audit log in the same
transaction; the signing secret never is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.channels import signing
from hub.db.base import utcnow
from hub.db.models import EventAttempt, EventEndpoint, EventMessage
from hub.domain import EventMessageState
from hub.events import outbox
from hub.services import audit
from hub.services.actor import Actor
from hub.services.contacts import check_webhook_target
from hub.services.errors import Conflict, NotFound


@dataclass(frozen=True, slots=True)
class MessageLog:
    message: EventMessage
    attempts: list[EventAttempt]


def snapshot(endpoint: EventEndpoint) -> dict[str, Any]:
    """What the audit log keeps of an endpoint: never its signing secret."""
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
    }


def _record(
    session: Session,
    endpoint: EventEndpoint,
    *,
    actor: Actor,
    action: audit.Action,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        resource=audit.Resource.EVENT_ENDPOINT,
        key=str(endpoint.id),
        before=before,
        after=after,
    )


def create(
    session: Session,
    *,
    actor: Actor,
    url: str,
    event_types: Sequence[str],
    description: str | None,
    secret: str | None,
    allow_private: bool,
) -> EventEndpoint:
    check_webhook_target(url, allow_private=allow_private, field="url")
    now = utcnow()
    endpoint = EventEndpoint(
        url=url,
        description=description,
        event_types=sorted(set(event_types)),
        secret=secret or signing.generate_secret(),
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    _record(
        session,
        endpoint,
        actor=actor,
        action=audit.Action.CREATED,
        before=None,
        after=snapshot(endpoint),
    )
    outbox.DIRECTORY.forget(session)
    return endpoint


def get(session: Session, endpoint_id: int) -> EventEndpoint:
    endpoint = session.get(EventEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"no event endpoint {endpoint_id}")
    return endpoint


def find(session: Session, *, after_id: int | None, limit: int) -> list[EventEndpoint]:
    query = select(EventEndpoint).order_by(EventEndpoint.id).limit(limit)
    if after_id is not None:
        query = query.where(EventEndpoint.id > after_id)
    return list(session.scalars(query))


def update(
    session: Session,
    endpoint_id: int,
    *,
    actor: Actor,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    allow_private: bool,
) -> EventEndpoint:
    """Change what is given. Enabling an endpoint that was disabled (410, a private address)
    sends what waited for it, in order, from the next sweep on."""
    endpoint = get(session, endpoint_id)
    before = snapshot(endpoint)
    if url is not None:
        check_webhook_target(url, allow_private=allow_private, field="url")
        endpoint.url = url
    if event_types is not None:
        endpoint.event_types = sorted(set(event_types))
    if description is not None:
        endpoint.description = description or None
    if enabled is not None:
        endpoint.enabled = enabled
        endpoint.disabled_reason = None if enabled else "disabled by hand"
    after = snapshot(endpoint)
    if after == before:
        return endpoint  # nothing changed: nothing to record, nobody to tell
    endpoint.updated_at = utcnow()
    session.flush()
    _record(
        session,
        endpoint,
        actor=actor,
        action=_action(before, after),
        before=before,
        after=after,
    )
    outbox.DIRECTORY.forget(session)
    return endpoint


def _action(before: dict[str, Any], after: dict[str, Any]) -> audit.Action:
    """Disabled or enabled when that is all that changed; updated otherwise."""
    changed = {k for k in after if after[k] != before[k]} - {"disabled_reason"}
    if changed == {"enabled"}:
        return audit.Action.ENABLED if after["enabled"] else audit.Action.DISABLED
    return audit.Action.UPDATED


def delete(session: Session, endpoint_id: int, *, actor: Actor) -> None:
    endpoint = get(session, endpoint_id)
    _record(
        session,
        endpoint,
        actor=actor,
        action=audit.Action.DELETED,
        before=snapshot(endpoint),
        after=None,
    )
    session.delete(endpoint)  # its messages and their log go with it
    session.flush()
    outbox.DIRECTORY.forget(session)


def messages(
    session: Session,
    endpoint_id: int,
    *,
    state: EventMessageState | None,
    before_id: int | None,
    limit: int,
) -> list[EventMessage]:
    """The delivery log, newest first."""
    get(session, endpoint_id)
    query = select(EventMessage).where(EventMessage.endpoint_id == endpoint_id)
    if state is not None:
        query = query.where(EventMessage.state == state)
    if before_id is not None:
        query = query.where(EventMessage.id < before_id)
    return list(session.scalars(query.order_by(EventMessage.id.desc()).limit(limit)))


def message(session: Session, endpoint_id: int, message_id: int) -> MessageLog:
    found = session.get(EventMessage, message_id)
    if found is None or found.endpoint_id != endpoint_id:
        raise NotFound(f"event endpoint {endpoint_id} has no message {message_id}")
    attempts = session.scalars(
        select(EventAttempt).where(EventAttempt.message_id == message_id).order_by(EventAttempt.id)
    )
    return MessageLog(found, list(attempts))


def resend(session: Session, endpoint_id: int, message_id: int) -> EventMessage:
    """Send a message again now: one that was given up, or delivered and lost by the receiver.

    It keeps its `webhook-id`, so a receiver that has it can tell, and starts the retry
    schedule again.
    """
    found = message(session, endpoint_id, message_id).message
    if found.state in (EventMessageState.PENDING, EventMessageState.SENDING):
        raise Conflict(f"message {message_id} is {found.state} already; it will be sent")
    found.state = EventMessageState.PENDING
    found.attempts = 0
    found.due_at = utcnow() - dt.timedelta(seconds=1)
    session.flush()
    return found
