"""Notifications as staff read them: a list (newest first, by topic, by state, only those
with failures) with each one's counts by state, and one notification with its deliveries in words.

Counts are grouped in the database for the page's notifications only; deliveries are read a
page at a time by id, so a notification to 100,000 people opens as fast as one to ten.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.db.models import Campaign, Contact, Delivery, Notification, Topic
from hub.domain import Channel, DeferralReason, DeliveryState, NotificationState
from hub.services import delivery_words as words

FAILURES = (DeliveryState.FAILED, DeliveryState.BOUNCED)
# The order a row's counts are shown in: what went, then what did not, then what is open.
STATE_ORDER = (
    DeliveryState.DELIVERED,
    DeliveryState.SENT,
    DeliveryState.BOUNCED,
    DeliveryState.FAILED,
    DeliveryState.UNKNOWN,
    DeliveryState.SUPPRESSED,
    DeliveryState.DEFERRED,
    DeliveryState.QUEUED,
    DeliveryState.SENDING,
)
SHORT = {
    DeliveryState.SUPPRESSED: "refused",
    DeliveryState.DEFERRED: "waiting",
}


def short(state: DeliveryState) -> str:
    """A state as one word for a count: `refused 3`, `waiting 12`."""
    return SHORT.get(state, state.value)


@dataclass(frozen=True)
class Listed:
    id: int
    topic: str
    template_key: str | None
    template_version: int | None
    source: str
    campaign_id: int | None
    campaign_name: str | None
    state: str
    created_at: dt.datetime
    send_at: dt.datetime | None
    counts: dict[DeliveryState, int]

    @property
    def failures(self) -> int:
        return sum(self.counts.get(s, 0) for s in FAILURES)


def listed(
    session: Session,
    *,
    before_id: int | None,
    limit: int,
    topic: str | None = None,
    failing: bool = False,
    state: NotificationState | None = None,
) -> list[Listed]:
    """Up to `limit` notifications older than `before_id`, newest first, with their counts."""
    query = (
        select(Notification, Topic.key, Campaign.name)
        .join(Topic, Topic.id == Notification.topic_id)
        .outerjoin(Campaign, Campaign.id == Notification.campaign_id)
    )
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    if topic:
        query = query.where(Topic.key == topic)
    if state is not None:
        query = query.where(Notification.state == state)
    if failing:
        # Failures are few beside everything sent: the state index finds them.
        failed = select(Delivery.notification_id).where(Delivery.state.in_(FAILURES))
        query = query.where(Notification.id.in_(failed))
    rows = session.execute(query.order_by(Notification.id.desc()).limit(limit)).all()
    counts = _counts(session, [n.id for n, _, _ in rows])
    return [
        Listed(
            id=n.id,
            topic=key,
            template_key=n.template_key,
            template_version=n.template_version,
            source=n.source,
            campaign_id=n.campaign_id,
            campaign_name=campaign_name,
            state=n.state.value,
            created_at=n.created_at,
            send_at=n.send_at,
            counts=counts.get(n.id, {}),
        )
        for n, key, campaign_name in rows
    ]


def _counts(session: Session, ids: list[int]) -> dict[int, dict[DeliveryState, int]]:
    if not ids:
        return {}
    found: dict[int, dict[DeliveryState, int]] = {}
    for notification_id, state, count in session.execute(
        select(Delivery.notification_id, Delivery.state, func.count())
        .where(Delivery.notification_id.in_(ids))
        .group_by(Delivery.notification_id, Delivery.state)
    ):
        found.setdefault(notification_id, {})[state] = count
    return {n: {s: c[s] for s in STATE_ORDER if s in c} for n, c in found.items()}


def topic_keys(session: Session) -> list[str]:
    return list(session.scalars(select(Topic.key).order_by(Topic.key)))


def cancellable(notification: Notification, totals: dict[DeliveryState, int]) -> bool:
    """Whether staff are offered a Cancel: nothing of it written yet, and not a campaign's
    (hub.services.notification_schedule.cancel decides for sure, under a row lock)."""
    if notification.campaign_id is not None or notification.source.startswith("campaign:"):
        return False
    if notification.state is NotificationState.SCHEDULED:
        return True
    return (
        notification.state is NotificationState.ACCEPTED and notification.cursor == 0 and not totals
    )


@dataclass(frozen=True)
class Detail:
    notification: Notification
    topic: str
    campaign_name: str | None
    by_channel: dict[str, dict[DeliveryState, int]]
    totals: dict[DeliveryState, int]

    @property
    def failures(self) -> int:
        return sum(self.totals.get(s, 0) for s in FAILURES)

    @property
    def cancellable(self) -> bool:
        return cancellable(self.notification, self.totals)


def detail(session: Session, notification_id: int) -> Detail | None:
    found = session.execute(
        select(Notification, Topic.key, Campaign.name)
        .join(Topic, Topic.id == Notification.topic_id)
        .outerjoin(Campaign, Campaign.id == Notification.campaign_id)
        .where(Notification.id == notification_id)
    ).first()
    if found is None:
        return None
    notification, topic, campaign_name = found
    by_channel: dict[str, dict[DeliveryState, int]] = {}
    totals: dict[DeliveryState, int] = {}
    for channel, state, count in session.execute(
        select(Delivery.channel, Delivery.state, func.count())
        .where(Delivery.notification_id == notification_id)
        .group_by(Delivery.channel, Delivery.state)
    ):
        by_channel.setdefault(channel.value, {})[state] = count
        totals[state] = totals.get(state, 0) + count
    order = [c.value for c in Channel]
    return Detail(
        notification=notification,
        topic=topic,
        campaign_name=campaign_name,
        by_channel={c: by_channel[c] for c in sorted(by_channel, key=order.index)},
        totals={s: totals[s] for s in STATE_ORDER if s in totals},
    )


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    contact: str  # external id
    name: str | None  # the person's name, read in the same query
    channel: str
    state: DeliveryState
    words: str  # why, in words; with "until when" for a deferred one
    error_code: str | None
    error: str | None
    attempts: int
    created_at: dt.datetime
    updated_at: dt.datetime
    sent_at: dt.datetime | None


def deliveries(
    session: Session,
    notification_id: int,
    *,
    after_id: int | None,
    limit: int,
    states: tuple[DeliveryState, ...] = (),
    now: dt.datetime,
) -> list[DeliveryRow]:
    """Up to `limit` of its deliveries after `after_id`, by id; only `states` when given."""
    query = (
        select(Delivery, Contact.external_id, Contact.name, Contact.timezone)
        .join(Contact, Contact.id == Delivery.contact_id)
        .where(Delivery.notification_id == notification_id)
    )
    if after_id is not None:
        query = query.where(Delivery.id > after_id)
    if states:
        query = query.where(Delivery.state.in_(states))
    rows = session.execute(query.order_by(Delivery.id).limit(limit))
    return [
        DeliveryRow(
            id=d.id,
            contact=external_id,
            name=name,
            channel=d.channel.value,
            state=d.state,
            words=_why(d, zone, now=now),
            error_code=d.error_code,
            error=d.error,
            attempts=d.attempts,
            created_at=d.created_at,
            updated_at=d.updated_at,
            sent_at=d.sent_at,
        )
        for d, external_id, name, zone in rows
    ]


def _why(delivery: Delivery, zone: str, *, now: dt.datetime) -> str:
    said = words.reason_words(delivery.state, delivery.reason)
    until = delivery.not_before or delivery.due_at
    if delivery.state is not DeliveryState.DEFERRED or until is None:
        return said
    head = words.split(delivery.reason)[0]
    if head == DeferralReason.PAUSED:
        return said
    if until <= now:
        return f"{said}; due now"
    local = zone if head in words.LOCAL_WAITS else None
    return f"{said}; goes at {words.moment(until, local, now=now)}"
