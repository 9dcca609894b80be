"""Who a notification reaches, streamed in id order, and what the resolver needs about each."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, case, distinct, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from hub.db.base import UTCDateTime
from hub.db.models import (
    Contact,
    ContactPreferences,
    Delivery,
    Notification,
    Subscription,
    Suppression,
    Topic,
)
from hub.dispatch import segment as segments
from hub.domain import (
    ADDRESS_FIELD,
    Audience,
    Channel,
    ContactKind,
    DeliveryState,
    SubscriptionStatus,
    TopicCategory,
)
from hub.preferences.model import (
    Caps,
    ContactView,
    History,
    PreferencesView,
    QuietHours,
    SubscriptionView,
    SuppressionView,
    TopicView,
)
from hub.services.hashing import AddressHasher


@dataclass(frozen=True, slots=True)
class Recipient:
    id: int
    link_key: str  # what the person's self-service links carry besides the id
    external_id: str
    name: str | None
    locale: str | None
    attributes: dict[str, Any]
    view: ContactView
    subscription: SubscriptionView | None
    preferences: PreferencesView
    suppressions: tuple[SuppressionView, ...]
    history: History | None = None  # only when the topic is capped
    # The person turned tracking off: compose leaves out the pixel and the link rewriting,
    # whatever the topic or campaign says. Not the resolver's business, so not in `preferences`.
    tracking_off: bool = False


NO_CAPS = Caps()


def topic_view(topic: Topic, defaults: Caps = NO_CAPS) -> TopicView:
    """The topic as the resolver sees it; its own caps override the hub's `defaults`."""
    return TopicView(
        key=topic.key,
        audience=topic.audience,
        allowed_channels=tuple(Channel(c) for c in topic.allowed_channels),
        default_channels=tuple(Channel(c) for c in topic.default_channels),
        required=topic.required,
        category=TopicCategory(topic.category),
        bypass_quiet_hours=topic.bypass_quiet_hours,
        caps=Caps(
            per_day=topic.cap_per_day if topic.cap_per_day is not None else defaults.per_day,
            per_week=topic.cap_per_week if topic.cap_per_week is not None else defaults.per_week,
            drop=topic.cap_action == "drop",
        ),
    )


# What counts against a cap: marketing messages sent, on their way, or possibly sent.
COUNTED = (
    DeliveryState.QUEUED,
    DeliveryState.SENDING,
    DeliveryState.SENT,
    DeliveryState.DELIVERED,
    DeliveryState.UNKNOWN,
)


def histories(
    session: Session,
    ids: Sequence[int],
    *,
    now: dt.datetime,
    excluding: int | None = None,
) -> dict[int, History]:
    """Each person's marketing messages (distinct notifications, any channel, any marketing
    topic) in the last day and week; `excluding` the notification being decided."""
    if not ids:
        return {}
    day, week = now - dt.timedelta(days=1), now - dt.timedelta(days=7)
    in_day = case((Delivery.created_at >= day, Delivery.notification_id))
    day_start = case((Delivery.created_at >= day, Delivery.created_at))
    # min() typed as the column, so SQLite's naive text comes back aware, as everywhere.
    query = (
        select(
            Delivery.contact_id,
            func.count(distinct(in_day)),
            func.count(distinct(Delivery.notification_id)),
            func.min(day_start, type_=UTCDateTime),
            func.min(Delivery.created_at, type_=UTCDateTime),
        )
        .join(Notification, Notification.id == Delivery.notification_id)
        .join(Topic, Topic.id == Notification.topic_id)
        .where(
            Delivery.contact_id.in_(ids),
            Delivery.created_at >= week,
            Delivery.state.in_(COUNTED),
            Topic.category == TopicCategory.MARKETING,
        )
        .group_by(Delivery.contact_id)
    )
    if excluding is not None:
        query = query.where(Delivery.notification_id != excluding)
    return {
        contact_id: History(
            day=int(day_count),
            week=int(week_count),
            day_oldest=day_first,
            week_oldest=week_first,
        )
        for contact_id, day_count, week_count, day_first, week_first in session.execute(query)
    }


_KIND = {Audience.CLIENTS: ContactKind.CLIENT, Audience.EMPLOYEES: ContactKind.EMPLOYEE}


def next_ids(
    session: Session,
    topic: Topic,
    *,
    named: Sequence[int] | None,
    after: int,
    limit: int,
    segment: dict[str, Any] | None = None,
) -> list[int]:
    """The next contact ids after `after`: the named ones, or everyone the topic reaches.

    A required topic reaches every contact of its audience (they cannot unsubscribe); any
    other topic reaches its confirmed subscribers. Keyset paging keeps memory flat.
    """
    if named is not None:
        return sorted(i for i in named if i > after)[:limit]
    person, query = _reach(topic, segment)
    query = query.where(person > after).order_by(person).limit(limit)
    return list(session.scalars(query))


def count(session: Session, topic: Topic | None, segment: dict[str, Any] | None = None) -> int:
    """How many people `next_ids` would go through (before the resolver's refusals); with
    no topic, how many contacts the segment matches."""
    _, query = _reach(topic, segment)
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def sample(
    session: Session, topic: Topic | None, segment: dict[str, Any] | None, *, limit: int
) -> list[tuple[str, str | None]]:
    """A few of the people `count` counts, newest first: (external id, name)."""
    _, query = _reach(topic, segment)
    rows = session.execute(
        select(Contact.external_id, Contact.name)
        .where(Contact.id.in_(query))
        .order_by(Contact.id.desc())
        .limit(limit)
    )
    return [(external_id, name) for external_id, name in rows]


def _reach(
    topic: Topic | None, segment: dict[str, Any] | None
) -> tuple[InstrumentedAttribute[int], Select[int]]:
    """Who the topic reaches: its column of contact ids, and the query selecting it. No
    topic: every contact the segment matches."""
    narrowed = segments.conditions(segment)
    if topic is None:
        return Contact.id, select(Contact.id).where(*narrowed)
    if topic.required:
        query = select(Contact.id).where(*narrowed)
        if topic.audience is not Audience.ALL:
            query = query.where(Contact.kind == _KIND[topic.audience])
        return Contact.id, query
    query = select(Subscription.contact_id).where(
        Subscription.topic_id == topic.id, Subscription.status == SubscriptionStatus.SUBSCRIBED
    )
    if narrowed:
        query = query.join(Contact, Contact.id == Subscription.contact_id).where(*narrowed)
    return Subscription.contact_id, query


_CONTACT_COLUMNS = (
    Contact.id,
    Contact.link_key,
    Contact.external_id,
    Contact.kind,
    Contact.name,
    Contact.email,
    Contact.phone,
    Contact.webhook_url,
    Contact.locale,
    Contact.timezone,
    Contact.attributes,
)


def load(
    session: Session,
    topic_id: int,
    ids: Sequence[int],
    *,
    hasher: AddressHasher,
    now: dt.datetime,
    count_for: int | None = None,
) -> list[Recipient]:
    """Everything the resolver needs about these contacts, in four queries. Missing ids
    (erased since) are left out."""
    if not ids:
        return []
    contacts = session.execute(select(*_CONTACT_COLUMNS).where(Contact.id.in_(ids))).all()
    subscriptions = {
        row.contact_id: SubscriptionView(
            status=row.status,
            channels=tuple(Channel(c) for c in row.channels),
            frequency=row.frequency,
        )
        for row in session.execute(
            select(
                Subscription.contact_id,
                Subscription.status,
                Subscription.channels,
                Subscription.frequency,
            ).where(Subscription.topic_id == topic_id, Subscription.contact_id.in_(ids))
        )
    }
    preferences: dict[int, PreferencesView] = {}
    untracked: set[int] = set()
    for row in session.scalars(
        select(ContactPreferences).where(ContactPreferences.contact_id.in_(ids))
    ):
        preferences[row.contact_id] = _preferences(row)
        if row.tracking_off:
            untracked.add(row.contact_id)
    addresses = {row.id: _addresses(row) for row in contacts}
    suppressed = _suppressions(session, addresses, hasher=hasher, now=now)
    counted = histories(session, ids, now=now, excluding=count_for) if count_for is not None else {}
    return [
        Recipient(
            id=row.id,
            link_key=row.link_key,
            external_id=row.external_id,
            name=row.name,
            locale=row.locale,
            attributes=row.attributes,
            view=ContactView(kind=row.kind, timezone=row.timezone, addresses=addresses[row.id]),
            subscription=subscriptions.get(row.id),
            preferences=preferences.get(row.id, PreferencesView()),
            suppressions=tuple(suppressed.get(row.id, ())),
            history=counted.get(row.id, History()) if count_for is not None else None,
            tracking_off=row.id in untracked,
        )
        for row in contacts
    ]


def _preferences(row: ContactPreferences) -> PreferencesView:
    return PreferencesView(
        blocked_channels=frozenset(Channel(c) for c in row.blocked_channels),
        quiet_hours=(
            QuietHours(row.quiet_start, row.quiet_end)
            if row.quiet_start is not None and row.quiet_end is not None
            else None
        ),
        unsubscribed_all=row.unsubscribed_all,
        digest_time=row.digest_time,
        digest_weekday=row.digest_weekday,
    )


def counts_for(view: TopicView, notification_id: int) -> int | None:
    """The `count_for` of `load`: the notification, when its topic is capped (a person's
    history then takes a fifth query)."""
    return notification_id if view.caps.active and view.marketing else None


def _addresses(row: Row[Any]) -> dict[Channel, str]:
    found: dict[Channel, str] = {}
    for channel, field in ADDRESS_FIELD.items():
        value = getattr(row, field)
        if value:
            found[channel] = value
    return found


def _suppressions(
    session: Session,
    addresses: dict[int, dict[Channel, str]],
    *,
    hasher: AddressHasher,
    now: dt.datetime,
) -> dict[int, list[SuppressionView]]:
    owners: dict[tuple[Channel, str], list[int]] = defaultdict(list)
    for contact_id, by_channel in addresses.items():
        for channel, address in by_channel.items():
            owners[(channel, hasher(channel, address))].append(contact_id)
    if not owners:
        return {}
    hashes = {digest for _, digest in owners}
    rows = session.execute(
        select(
            Suppression.channel,
            Suppression.address_hash,
            Suppression.reason,
            Suppression.expires_at,
        ).where(
            Suppression.address_hash.in_(hashes),
            or_(Suppression.expires_at.is_(None), Suppression.expires_at > now),
        )
    )
    found: dict[int, list[SuppressionView]] = defaultdict(list)
    for row in rows:
        for contact_id in owners.get((row.channel, row.address_hash), ()):
            found[contact_id].append(
                SuppressionView(channel=row.channel, reason=row.reason, until=row.expires_at)
            )
    return found
