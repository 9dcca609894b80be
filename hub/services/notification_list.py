"""GET /v1/notifications: notifications newest first, filtered, a page at a time, each with
its deliveries counted by state (one grouped query a page, not one a row)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.db.models import Delivery, Notification, Topic
from hub.domain import NotificationState
from hub.schemas.notification_list import NotificationSummary
from hub.services.errors import InvalidField

_SHOWN = (
    Notification.id,
    Notification.template_key,
    Notification.source,
    Notification.state,
    Notification.created_at,
    Notification.send_at,
    Notification.cancelled_at,
    Notification.fanned_out_at,
)


@dataclass(frozen=True, slots=True)
class Filters:
    topic: str | None = None  # a topic's key
    state: NotificationState | None = None
    created_after: dt.datetime | None = None  # exclusive
    created_before: dt.datetime | None = None  # exclusive
    source: str | None = None  # exactly as stored: `api:<key name>`, `campaign:<id>`

    def check(self) -> None:
        """Raises InvalidField for a range that can hold nothing (surely a mistake)."""
        if self.created_after and self.created_before and self.created_before <= self.created_after:
            raise InvalidField("created_before", "must be later than created_after")


def page(
    session: Session, filters: Filters, *, before_id: int | None, limit: int
) -> list[NotificationSummary]:
    """Up to `limit` notifications older than `before_id` (a newer page's last), newest first."""
    filters.check()
    # Only the columns a summary shows: a notification's content and data can be large.
    query = select(*_SHOWN, Topic.key.label("topic")).join(Topic, Topic.id == Notification.topic_id)
    if filters.topic is not None:
        query = query.where(Topic.key == filters.topic)
    if filters.state is not None:
        query = query.where(Notification.state == filters.state)
    if filters.created_after is not None:
        query = query.where(Notification.created_at > filters.created_after)
    if filters.created_before is not None:
        query = query.where(Notification.created_at < filters.created_before)
    if filters.source is not None:
        query = query.where(Notification.source == filters.source)
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    rows = session.execute(query.order_by(Notification.id.desc()).limit(limit)).all()
    counts = _counts(session, [row.id for row in rows])
    return [
        NotificationSummary(
            id=row.id,
            topic=row.topic,
            template=row.template_key,
            source=row.source,
            state=row.state,
            created_at=row.created_at,
            send_at=row.send_at,
            cancelled_at=row.cancelled_at,
            fanned_out_at=row.fanned_out_at,
            counts=counts.get(row.id, {}),
        )
        for row in rows
    ]


def _counts(session: Session, ids: list[int]) -> dict[int, dict[str, int]]:
    if not ids:
        return {}
    found: dict[int, dict[str, int]] = defaultdict(dict)
    for notification_id, state, count in session.execute(
        select(Delivery.notification_id, Delivery.state, func.count())
        .where(Delivery.notification_id.in_(ids))
        .group_by(Delivery.notification_id, Delivery.state)
    ):
        found[notification_id][state.value] = count
    return found
