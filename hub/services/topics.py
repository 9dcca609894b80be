"""Topics: upsert by key, lookup, listing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Topic
from hub.schemas.topics import TopicIn
from hub.services.errors import Conflict, NotFound


def get(session: Session, key: str) -> Topic:
    topic = session.scalar(select(Topic).where(Topic.key == key))
    if topic is None:
        raise NotFound(f"no topic with key {key!r}")
    return topic


def put(session: Session, key: str, data: TopicIn) -> tuple[Topic, bool]:
    values: dict[str, Any] = data.model_dump(mode="json")
    topic = session.scalar(select(Topic).where(Topic.key == key))
    now = utcnow()
    if topic is None:
        topic = Topic(key=key, created_at=now, updated_at=now, **values)
        try:
            with session.begin_nested():
                session.add(topic)
        except IntegrityError:
            raise Conflict(f"topic {key!r} was created concurrently; retry") from None
        return topic, True
    for name, value in values.items():
        setattr(topic, name, value)
    topic.updated_at = now
    return topic, False


def page(session: Session, *, after_id: int | None, limit: int) -> list[Topic]:
    query = select(Topic).order_by(Topic.id).limit(limit)
    if after_id is not None:
        query = query.where(Topic.id > after_id)
    return list(session.scalars(query))
