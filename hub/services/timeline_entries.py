"""A page of a contact's timeline as staff read it: each event in words (`timeline_words`)
with its data as table rows, the notifications, campaigns, templates and addresses the page's
events name read in one query, however many events there are.

Events are read with their kind, channel and actor kind as plain text, not as the ORM's
enums: a row written by a newer version (a kind this one does not know) still shows, as its
kind, instead of failing the whole page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, select, type_coerce
from sqlalchemy.orm import Session

from hub.db.models import Campaign, ContactEvent, Delivery, Notification
from hub.services import timeline_words

_EVENTS = ContactEvent.__table__.c
# The columns of an event its words read, as plain strings (a kind this version does not
# know still reads); `event_of` makes them the words' Event.
WORDED = (
    type_coerce(_EVENTS.type, String).label("kind"),
    type_coerce(_EVENTS.channel, String).label("channel"),
    _EVENTS.topic_key,
    _EVENTS.reason,
    _EVENTS.changes,
    type_coerce(_EVENTS.actor_kind, String).label("actor_kind"),
    _EVENTS.actor,
    _EVENTS.source,
)


def event_of(row: Any) -> timeline_words.Event:
    """A row selected with `WORDED`, as the words read it."""
    return timeline_words.Event(
        kind=row.kind,
        channel=row.channel,
        topic_key=row.topic_key,
        reason=row.reason,
        changes=row.changes,
        actor_kind=row.actor_kind,
        actor=row.actor,
        source=row.source,
    )


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    occurred_at: dt.datetime
    kind: str
    words: timeline_words.Words | None  # None: a kind with no words; `fallback` says what is known
    fallback: timeline_words.Words
    details: list[tuple[str, timeline_words.Words]]
    actor_kind: str
    actor: str
    source: str


def page(
    session: Session,
    contact_id: int,
    *,
    before_id: int | None,
    limit: int,
    topics: Mapping[str, str],
    zone: str | None,
    now: dt.datetime,
) -> list[Entry]:
    """Up to `limit` events older than `before_id`, newest first. `topics` names topics by
    key (the caller has them already); `zone` is the person's, for when a wait ends."""
    query = select(_EVENTS.id, _EVENTS.occurred_at, *WORDED).where(_EVENTS.contact_id == contact_id)
    if before_id is not None:
        query = query.where(_EVENTS.id < before_id)
    rows = session.execute(query.order_by(_EVENTS.id.desc()).limit(limit)).all()
    events = [
        (
            row.id,
            row.occurred_at,
            event_of(row),
        )
        for row in rows
    ]
    known = facts(session, [e for _, _, e in events], topics=topics, zone=zone, now=now)
    return [
        Entry(
            id=event_id,
            occurred_at=at,
            kind=event.kind,
            words=timeline_words.sentence(event, known),
            fallback=timeline_words.fallback(event),
            details=timeline_words.details(event, known),
            actor_kind=event.actor_kind,
            actor=event.actor,
            source=event.source,
        )
        for event_id, at, event in events
    ]


def facts(
    session: Session,
    events: list[timeline_words.Event],
    *,
    topics: Mapping[str, str],
    zone: str | None,
    now: dt.datetime,
) -> timeline_words.Known:
    """What the events' notification and delivery ids point to, in one query: each
    notification with its campaign's name and template, joined to the deliveries named."""
    notification_ids: set[int] = set()
    delivery_ids: set[int] = set()
    for event in events:
        changes = event.changes if isinstance(event.changes, Mapping) else {}
        for name, found in (("notification_id", notification_ids), ("delivery_id", delivery_ids)):
            value = changes.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
                found.add(value)
    sendings: dict[int, timeline_words.Sending] = {}
    addresses: dict[int, str | None] = {}
    if notification_ids:
        named = and_(Delivery.notification_id == Notification.id, Delivery.id.in_(delivery_ids))
        for row in session.execute(
            select(
                Notification.id,
                Notification.campaign_id,
                Campaign.name,
                Notification.template_key,
                Notification.template_version,
                Notification.arm,
                Delivery.id.label("delivery_id"),
                Delivery.address,
            )
            .select_from(Notification)
            .outerjoin(Campaign, Campaign.id == Notification.campaign_id)
            .outerjoin(Delivery, named)
            .where(Notification.id.in_(notification_ids))
        ):
            sendings[row.id] = timeline_words.Sending(
                campaign_id=row.campaign_id,
                campaign_name=row.name,
                template_key=row.template_key,
                template_version=row.template_version,
                arm=row.arm,
            )
            if row.delivery_id is not None:
                addresses[row.delivery_id] = row.address
    return timeline_words.Known(
        now=now, zone=zone, notifications=sendings, addresses=addresses, topics=topics
    )
