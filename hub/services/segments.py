"""Saved segments: put by key, look up, list, delete; each change on the audit log.

What a segment matches is dispatch's to say (hub.dispatch.segment); here a tree is only
checked against what exists: every topic it names must be one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Segment, Topic
from hub.schemas.segments import Condition, SavedSegmentIn
from hub.services import audit
from hub.services.actor import Actor
from hub.services.errors import Conflict, InvalidField, NotFound


def get(session: Session, key: str) -> Segment:
    segment = session.scalar(select(Segment).where(Segment.key == key))
    if segment is None:
        raise NotFound(f"no segment with key {key!r}")
    return segment


def put(session: Session, key: str, body: SavedSegmentIn, actor: Actor) -> tuple[Segment, bool]:
    """Create or replace; True when created. Raises InvalidField for a topic that does not
    exist, naming where in the tree."""
    check_topics(session, body.conditions, field="conditions")
    values: dict[str, Any] = {
        "name": body.name,
        "description": body.description,
        "conditions": body.conditions.dump(),
    }
    segment = session.scalar(select(Segment).where(Segment.key == key))
    now = utcnow()
    if segment is None:
        segment = Segment(key=key, created_by=actor.name, created_at=now, updated_at=now, **values)
        try:
            with session.begin_nested():
                session.add(segment)
        except IntegrityError:
            raise Conflict(f"segment {key!r} was created concurrently; retry") from None
        audit.record(
            session,
            actor=actor,
            action=audit.Action.CREATED,
            resource=audit.Resource.SEGMENT,
            key=key,
            after=values,
        )
        return segment, True
    before = {name: getattr(segment, name) for name in values}
    if before == values:
        return segment, False  # nothing changed: nothing to record
    for name, value in values.items():
        setattr(segment, name, value)
    segment.updated_at = now
    audit.record(
        session,
        actor=actor,
        action=audit.Action.UPDATED,
        resource=audit.Resource.SEGMENT,
        key=key,
        before=before,
        after=values,
    )
    return segment, False


def delete(session: Session, key: str, actor: Actor) -> None:
    """Campaigns keep their own copy of the conditions, so none depends on the row."""
    segment = get(session, key)
    before = {
        "name": segment.name,
        "description": segment.description,
        "conditions": segment.conditions,
    }
    session.delete(segment)
    audit.record(
        session,
        actor=actor,
        action=audit.Action.DELETED,
        resource=audit.Resource.SEGMENT,
        key=key,
        before=before,
    )


def page(session: Session, *, after_id: int | None, limit: int) -> list[Segment]:
    query = select(Segment).order_by(Segment.id).limit(limit)
    if after_id is not None:
        query = query.where(Segment.id > after_id)
    return list(session.scalars(query))


def by_name(session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).order_by(Segment.name, Segment.key)))


def check_topics(session: Session, tree: Condition, *, field: str) -> None:
    """Raises InvalidField at the first subscription condition naming no topic."""
    named = dict(_subscription_topics(tree, field))
    if not named:
        return
    known = set(session.scalars(select(Topic.key).where(Topic.key.in_(set(named.values())))))
    for path, topic in named.items():
        if topic not in known:
            raise InvalidField(f"{path}.subscription.topic", f"no topic {topic!r}")


def _subscription_topics(tree: Condition, field: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    pending = [(tree, field)]
    while pending:
        node, path = pending.pop()
        if node.subscription is not None:
            found.append((path, node.subscription.topic))
        if node.not_ is not None:
            pending.append((node.not_, f"{path}.not"))
        for name, children in (("any", node.any_), ("all", node.all_)):
            listed = list(enumerate(children or ()))
            pending.extend((child, f"{path}.{name}[{i}]") for i, child in reversed(listed))
    return found  # in the order the tree is written
