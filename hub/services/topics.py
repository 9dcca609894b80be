"""Topics: create, change or upsert by key (each change in the staff audit log), lookup,
listing."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Topic
from hub.db.upsert import insert_ignoring_duplicates
from hub.domain import ActorKind, Audience, TopicCategory
from hub.schemas.topics import TopicIn
from hub.services import audit, client_topics
from hub.services.actor import Actor
from hub.services.errors import Conflict, InvalidField, NotFound

# What a topic's audit entry shows before and after: every field its editor can change.
FIELDS = tuple(TopicIn.model_fields)


class TopicExists(Conflict):
    code = "topic_exists"


SYSTEM = Actor(ActorKind.SYSTEM, "system", "topics")


def get(session: Session, key: str) -> Topic:
    """The topic with this key; a client-event topic (`ClientTopic`) is made on first use."""
    topic = session.scalar(select(Topic).where(Topic.key == key))
    if topic is not None:
        return topic
    made = client_topics.definition(key)
    if made is None:
        raise NotFound(f"no topic with key {key!r}")
    return _first_use(session, key, made)


def _first_use(session: Session, key: str, data: TopicIn) -> Topic:
    """A client topic's row, made now unless someone made it at the same moment (two
    employees subscribing at once both get it; only the one who made it is audited)."""
    now = utcnow()
    values = {"key": key, "created_at": now, "updated_at": now, **data.model_dump(mode="json")}
    insert = insert_ignoring_duplicates(session, Topic.__table__).values(values)
    made = session.execute(insert.returning(Topic.id)).scalar()
    topic = session.scalars(select(Topic).where(Topic.key == key)).one()
    if made is not None:
        audit.record(
            session,
            actor=SYSTEM,
            action=audit.Action.CREATED,
            resource=audit.Resource.TOPIC,
            key=key,
            after=snapshot(topic),
        )
    return topic


def put(session: Session, key: str, data: TopicIn, *, actor: Actor) -> tuple[Topic, bool]:
    """Create the topic, or replace every field of the one with this key."""
    topic = session.scalar(select(Topic).where(Topic.key == key))
    if topic is None:
        return _create(session, key, data, actor=actor), True
    _change(session, topic, data, actor=actor)
    return topic, False


def create(session: Session, key: str, data: TopicIn, *, actor: Actor) -> Topic:
    """A new topic; raises TopicExists (naming the field `key`) when the key is taken."""
    if session.scalar(select(Topic.id).where(Topic.key == key)) is not None:
        raise _taken(key)
    return _create(session, key, data, actor=actor)


def update(session: Session, key: str, data: TopicIn, *, actor: Actor) -> Topic:
    """Replace every field of an existing topic; raises NotFound."""
    topic = get(session, key)
    _change(session, topic, data, actor=actor)
    return topic


def page(
    session: Session,
    *,
    after_id: int | None,
    limit: int,
    category: TopicCategory | None = None,
) -> list[Topic]:
    query = select(Topic).order_by(Topic.id).limit(limit)
    if after_id is not None:
        query = query.where(Topic.id > after_id)
    if category is not None:
        query = query.where(Topic.category == category)
    return list(session.scalars(query))


def every(session: Session) -> list[Topic]:
    """All topics by key: what a person picks from (there are tens, not thousands)."""
    return list(session.scalars(select(Topic).order_by(Topic.key)))


def snapshot(topic: Topic) -> dict[str, Any]:
    """The topic's editable fields as JSON values: an audit entry's before or after."""
    return {name: _plain(getattr(topic, name)) for name in FIELDS}


def _create(session: Session, key: str, data: TopicIn, *, actor: Actor) -> Topic:
    if client_topics.is_client_topic(key) and data.audience is not Audience.EMPLOYEES:
        raise InvalidField("audience", f"topic {key!r} tells employees of their clients")
    now = utcnow()
    topic = Topic(key=key, created_at=now, updated_at=now, **data.model_dump(mode="json"))
    try:
        with session.begin_nested():
            session.add(topic)
    except IntegrityError:
        raise Conflict(f"topic {key!r} was created concurrently; retry") from None
    audit.record(
        session,
        actor=actor,
        action=audit.Action.CREATED,
        resource=audit.Resource.TOPIC,
        key=key,
        after=snapshot(topic),
    )
    return topic


def _change(session: Session, topic: Topic, data: TopicIn, *, actor: Actor) -> None:
    """Write the new values; a change that changes nothing is not a change (no entry)."""
    if client_topics.is_client_topic(topic.key) and data.audience is not Audience.EMPLOYEES:
        raise InvalidField("audience", f"topic {topic.key!r} tells employees of their clients")
    before = snapshot(topic)
    for name, value in data.model_dump(mode="json").items():
        setattr(topic, name, value)
    after = snapshot(topic)
    if after == before:
        return
    topic.updated_at = utcnow()
    changed = [name for name in FIELDS if before[name] != after[name]]
    audit.record(
        session,
        actor=actor,
        action=audit.Action.UPDATED,
        resource=audit.Resource.TOPIC,
        key=topic.key,
        before={name: before[name] for name in changed},
        after={name: after[name] for name in changed},
    )


def _taken(key: str) -> TopicExists:
    message = f"a topic with the key {key!r} already exists: choose another key, or edit it"
    return TopicExists(message, details=[{"field": "key", "message": message}])


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
