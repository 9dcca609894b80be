"""Scheduled notifications: start those whose send_at has come, and cancel one before it goes.

Starting is the sweeper's (every `HUB_SWEEP_INTERVAL_SECONDS`, 2 s by default, so a
notification goes within about that of its send_at); several sweepers may run at once: on
PostgreSQL they skip each other's locked rows, SQLite has one writer. A crash between the
state change and the enqueue is caught by the sweep of `accepted` notifications whose lease
ran out, like any lost fan-out.

Cancelling locks the notification's row, as the fan-out's `apply_batch` does before it writes
deliveries, so the two cannot both win: a cancel either finds nothing written yet, or is
refused because the notification is already going out.
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from hub.db.models import Contact, Delivery, Notification, Topic
from hub.domain import EventType, NotificationState
from hub.services import timeline
from hub.services.actor import Actor
from hub.services.errors import Conflict, NotFound

_S = TypeVar("_S", bound=Select)  # type: ignore[type-arg]
_CHUNK = 1000  # contact ids per IN (...) when recording events for named recipients


def start_due(
    session: Session, *, now: dt.datetime, lease: dt.timedelta, limit: int = 1000
) -> list[int]:
    """Move scheduled notifications whose send_at has passed to `accepted`, their fan-out
    leased for `lease`; their ids, to enqueue once the caller has committed."""
    ids = list(
        session.scalars(
            _locked(
                session,
                select(Notification.id)
                .where(
                    Notification.state == NotificationState.SCHEDULED,
                    Notification.due_at <= now,
                )
                .order_by(Notification.due_at)
                .limit(limit),
            )
        )
    )
    if ids:
        session.execute(
            update(Notification)
            .where(Notification.id.in_(ids), Notification.state == NotificationState.SCHEDULED)
            .values(state=NotificationState.ACCEPTED, due_at=now + lease)
            .execution_options(synchronize_session=False)
        )
    return ids


def cancel(
    session: Session, notification_id: int, *, actor: Actor, now: dt.datetime
) -> Notification:
    """Cancel a notification nothing has been sent for; the caller commits.

    Raises NotFound for an unknown id, Conflict once its fan-out has written a delivery (or
    finished), and for a campaign's notification (the campaign is cancelled instead).
    Cancelling a cancelled one changes nothing and answers the same.
    """
    notification = session.scalars(
        select(Notification)
        .where(Notification.id == notification_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if notification is None:
        raise NotFound(f"no notification {notification_id}")
    if notification.state is NotificationState.CANCELLED:
        return notification
    if notification.campaign_id is not None or notification.source.startswith("campaign:"):
        raise Conflict(
            f"notification {notification_id} belongs to a campaign: pause or cancel the "
            "campaign instead"
        )
    if notification.state is not NotificationState.SCHEDULED:
        made = session.scalar(
            select(func.count()).where(Delivery.notification_id == notification_id)
        )
        started = notification.cursor != 0 or made
        if notification.state is NotificationState.FANNED_OUT or started:
            said = "delivery exists" if made == 1 else "deliveries exist"
            raise Conflict(
                f"notification {notification_id} is already going out ({made} {said}); "
                "it can no longer be cancelled"
            )
    notification.state = NotificationState.CANCELLED
    notification.cancelled_at = now
    _record(session, notification, actor=actor, now=now)
    return notification


def _record(
    session: Session, notification: Notification, *, actor: Actor, now: dt.datetime
) -> None:
    """NOTIFICATION_CANCELLED on each named recipient's timeline (a topic's subscribers were
    never told it was coming, so theirs are left alone). Erased contacts are skipped."""
    if not notification.recipients:
        return
    topic_key = session.scalar(select(Topic.key).where(Topic.id == notification.topic_id))
    wanted = sorted(set(notification.recipients))
    for start in range(0, len(wanted), _CHUNK):
        present = session.scalars(
            select(Contact.id).where(Contact.id.in_(wanted[start : start + _CHUNK]))
        )
        timeline.record_many(
            session,
            [
                timeline.event_row(
                    contact_id=contact_id,
                    type=EventType.NOTIFICATION_CANCELLED,
                    actor=actor,
                    at=now,
                    topic_key=topic_key,
                    changes={"notification": notification.id},
                )
                for contact_id in present
            ],
        )


def _locked(session: Session, query: _S) -> _S:
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query
