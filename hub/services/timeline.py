"""The contact timeline: append events (one or in bulk) and read them back, newest first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hub.db.base import Base, utcnow
from hub.db.models import ContactEvent
from hub.domain import Channel, EventType
from hub.events import client_outbox, outbox
from hub.services.actor import Actor

Changes = dict[str, dict[str, Any]]
_TABLE = Base.metadata.tables[ContactEvent.__tablename__]


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> Changes:
    """{field: {"before": old, "after": new}} for every field whose value differs."""
    return {
        name: {"before": before.get(name), "after": value}
        for name, value in after.items()
        if before.get(name) != value
    }


def event_row(
    *,
    contact_id: int,
    type: EventType,
    actor: Actor,
    at: dt.datetime | None = None,
    changes: Mapping[str, Any] | None = None,
    topic_key: str | None = None,
    channel: Channel | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "contact_id": contact_id,
        "occurred_at": at or utcnow(),
        "type": type,
        "actor_kind": actor.kind,
        "actor": actor.name,
        "source": actor.source,
        "topic_key": topic_key,
        "channel": channel,
        "changes": changes,
        "reason": reason,
        "ip": actor.ip,
        "user_agent": actor.user_agent[:512] if actor.user_agent else None,
    }


def record(
    session: Session,
    *,
    contact_id: int,
    type: EventType,
    actor: Actor,
    at: dt.datetime | None = None,
    changes: Mapping[str, Any] | None = None,
    topic_key: str | None = None,
    channel: Channel | None = None,
    reason: str | None = None,
) -> None:
    """Append one event (`at` defaults to now); the fields are those of `event_row`."""
    row = event_row(
        contact_id=contact_id,
        type=type,
        actor=actor,
        at=at,
        changes=changes,
        topic_key=topic_key,
        channel=channel,
        reason=reason,
    )
    record_many(session, [row])


def record_many(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        # Core, not the ORM's bulk insert: the dispatcher appends thousands a second.
        session.execute(insert(_TABLE), rows)
        outbox.emit(session, rows)  # other services' endpoints hear of it, same transaction
        client_outbox.emit(session, rows)  # and the employees who look after a client


def page(
    session: Session,
    contact_id: int,
    *,
    before_id: int | None,
    limit: int,
    types: list[EventType] | None = None,
) -> list[ContactEvent]:
    query = select(ContactEvent).where(ContactEvent.contact_id == contact_id)
    if before_id is not None:
        query = query.where(ContactEvent.id < before_id)
    if types:
        query = query.where(ContactEvent.type.in_(types))
    return list(session.scalars(query.order_by(ContactEvent.id.desc()).limit(limit)))
