"""Subscriptions: choose topics and channels, unsubscribe, with consent evidence and events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Contact, StaffUser, Subscription, Topic
from hub.domain import (
    ADDRESS_FIELD,
    Channel,
    ClientScope,
    EventType,
    Frequency,
    StaffRole,
    SubscriptionStatus,
)
from hub.events import client_outbox
from hub.schemas.subscriptions import SubscriptionIn, SubscriptionOut
from hub.services import client_topics, timeline
from hub.services.actor import SELF_SERVICE_SOURCE, Actor
from hub.services.errors import Conflict, InvalidField, NotFound


class TopicRequired(Conflict):
    code = "topic_required"


# The staff roles whose employee may hear of every client (`ClientScope.ALL`).
SEES_ALL = (StaffRole.ADMIN, StaffRole.MARKETER)


def _state(subscription: Subscription) -> dict[str, Any]:
    state = {
        "status": subscription.status.value,
        "channels": list(subscription.channels),
        "frequency": subscription.frequency.value,
    }
    if subscription.scope is not None:
        state["scope"] = subscription.scope
    return state


def view(topic: Topic, subscription: Subscription | None) -> SubscriptionOut:
    if subscription is None:
        if not topic.required:
            raise NotFound(f"the contact has no subscription to {topic.key!r}")
        return SubscriptionOut(
            topic=topic.key,
            status=SubscriptionStatus.SUBSCRIBED,
            channels=[Channel(c) for c in topic.default_channels],
            frequency=Frequency.IMMEDIATE,
            implicit=True,
        )
    return SubscriptionOut(
        topic=topic.key,
        status=subscription.status,
        channels=[Channel(c) for c in subscription.channels],
        frequency=subscription.frequency,
        scope=ClientScope(subscription.scope) if subscription.scope else None,
        consent_source=subscription.consent_source,
        consent_actor=subscription.consent_actor,
        consent_at=subscription.consent_at,
        updated_at=subscription.updated_at,
    )


def find(session: Session, contact: Contact, topic: Topic) -> Subscription | None:
    return session.scalar(
        select(Subscription).where(
            Subscription.contact_id == contact.id, Subscription.topic_id == topic.id
        )
    )


def all_for(session: Session, contact: Contact) -> list[SubscriptionOut]:
    rows = session.execute(
        select(Topic, Subscription)
        .outerjoin(
            Subscription,
            (Subscription.topic_id == Topic.id) & (Subscription.contact_id == contact.id),
        )
        .where((Subscription.id.is_not(None)) | Topic.required)
        .order_by(Topic.key)
    ).all()
    return [
        view(topic, subscription)
        for topic, subscription in rows
        if topic.audience.includes(contact.kind) or subscription is not None
    ]


def _channels(
    contact: Contact, topic: Topic, wanted: list[Channel] | None, current: Subscription | None
) -> list[str]:
    if wanted is None:
        if current is not None:
            return list(current.channels)
        usable = [c for c in topic.default_channels if getattr(contact, ADDRESS_FIELD[Channel(c)])]
        if not usable:
            raise InvalidField(
                "channels",
                f"the contact has no address for any of the topic's default channels "
                f"({', '.join(topic.default_channels)}); name the channels to use",
            )
        return usable
    if len(set(wanted)) != len(wanted):
        raise InvalidField("channels", "lists a channel twice")
    for index, channel in enumerate(wanted):
        if channel.value not in topic.allowed_channels:
            raise InvalidField(
                f"channels[{index}]",
                f"topic {topic.key!r} does not allow {channel.value} "
                f"(allowed: {', '.join(topic.allowed_channels)})",
            )
        field = ADDRESS_FIELD[channel]
        if not getattr(contact, field):
            raise InvalidField(
                f"channels[{index}]", f"the contact has no {field} to use {channel.value} with"
            )
    return [c.value for c in wanted]


@dataclass(frozen=True)
class Outcome:
    subscription: SubscriptionOut
    created: bool


def put(
    session: Session,
    contact: Contact,
    topic: Topic,
    data: SubscriptionIn,
    actor: Actor,
    *,
    cool_down: dt.timedelta = dt.timedelta(0),
    note: str | None = None,
) -> Outcome:
    """Create or change a subscription; `note` is kept on the timeline event (the reason).

    A person's own unsubscribe stands against anyone else's re-subscription for `cool_down`
    (`HUB_COOL_DOWN_DAYS`); only the person may undo it sooner.
    """
    if not topic.audience.includes(contact.kind):
        raise InvalidField(
            "topic",
            f"topic {topic.key!r} is for {topic.audience.value}, the contact is a "
            f"{contact.kind.value}",
        )
    current = find(session, contact, topic)
    if data.status is SubscriptionStatus.UNSUBSCRIBED and topic.required:
        raise TopicRequired(
            f"topic {topic.key!r} is required (transactional) and cannot be unsubscribed; "
            "its channels can still be chosen",
            details=[{"field": "status", "message": "required topics cannot be unsubscribed"}],
        )
    if data.status is SubscriptionStatus.SUBSCRIBED:
        _cooling(current, actor, cool_down)
    scope = _scope(session, contact, topic, data.scope, current)
    channels = _channels(contact, topic, data.channels, current)
    if not channels and data.status is SubscriptionStatus.SUBSCRIBED:
        raise InvalidField("channels", "a subscription needs at least one channel")
    frequency = data.frequency or (current.frequency if current else Frequency.IMMEDIATE)
    if frequency.value not in topic.allowed_frequencies:
        raise InvalidField(
            "frequency", f"topic {topic.key!r} allows {', '.join(topic.allowed_frequencies)}"
        )
    after = {"status": data.status.value, "channels": channels, "frequency": frequency.value}
    if scope is not None:
        after["scope"] = scope.value
    return _write(session, contact, topic, current=current, after=after, actor=actor, note=note)


def _scope(
    session: Session,
    contact: Contact,
    topic: Topic,
    wanted: ClientScope | None,
    current: Subscription | None,
) -> ClientScope | None:
    """A client-event topic's scope (the wanted one, else the current, else `mine`)."""
    if not client_topics.is_client_topic(topic.key):
        if wanted is not None:
            raise InvalidField("scope", "only the client-event topics (clients.*) take a scope")
        return None
    kept = ClientScope(current.scope) if current and current.scope else ClientScope.MINE
    if wanted is None:
        # A saved `all` of someone who may no longer see every client narrows to `mine`
        # rather than refusing a change the caller did not make (an unsubscribe included).
        if kept is ClientScope.ALL and not sees_all(session, contact.id):
            return ClientScope.MINE
        return kept
    scope = wanted
    if scope is ClientScope.ALL and not sees_all(session, contact.id):
        raise InvalidField(
            "scope",
            "`all` is for an employee whose staff account is an admin or marketer; "
            "choose `mine` or `teams`",
        )
    return scope


def sees_all(session: Session, contact_id: int) -> bool:
    """Whether this employee's staff account may see every client (admin or marketer)."""
    found = session.scalar(
        select(StaffUser.id).where(
            StaffUser.contact_id == contact_id,
            StaffUser.role.in_(SEES_ALL),
            StaffUser.disabled.is_(False),
        )
    )
    return found is not None


def unsubscribe(session: Session, contact: Contact, topic: Topic, actor: Actor) -> Outcome:
    if topic.required:
        raise TopicRequired(
            f"topic {topic.key!r} is required (transactional) and cannot be unsubscribed; "
            "choose its channels instead"
        )
    current = find(session, contact, topic)
    if current is None:
        raise NotFound(f"the contact has no subscription to {topic.key!r}")
    after = {**_state(current), "status": SubscriptionStatus.UNSUBSCRIBED.value}
    return _write(session, contact, topic, current=current, after=after, actor=actor)


def _write(
    session: Session,
    contact: Contact,
    topic: Topic,
    *,
    current: Subscription | None,
    after: dict[str, Any],
    actor: Actor,
    note: str | None = None,
) -> Outcome:
    now = utcnow()
    before = _state(current) if current is not None else {}
    delta = timeline.diff(before, after)
    if current is None:
        current = Subscription(
            contact_id=contact.id,
            topic_id=topic.id,
            created_at=now,
            **_evidence(actor, now),
            status=SubscriptionStatus(after["status"]),
            channels=after["channels"],
            frequency=Frequency(after["frequency"]),
            scope=after.get("scope"),
            updated_at=now,
        )
        try:
            with session.begin_nested():
                session.add(current)
        except IntegrityError:
            raise Conflict("the subscription was changed concurrently; retry") from None
    elif delta:
        if "status" in delta:
            for name, value in _evidence(actor, now).items():
                setattr(current, name, value)
        current.status = SubscriptionStatus(after["status"])
        current.channels = after["channels"]
        current.frequency = Frequency(after["frequency"])
        current.scope = after.get("scope")
        current.updated_at = now
    if delta and client_topics.is_client_topic(topic.key):
        # This process hears of its clients from the commit on: forgotten before it, another
        # thread's event could read "nobody listens" and keep that for seconds.
        event.listen(session, "after_commit", client_outbox.DIRECTORY.forget, once=True)
    if delta:
        timeline.record(
            session,
            contact_id=contact.id,
            type=EventType.SUBSCRIPTION_CHANGED,
            actor=actor,
            at=now,
            changes=delta,
            topic_key=topic.key,
            reason=note,
        )
    return Outcome(view(topic, current), created=not before)


def _cooling(current: Subscription | None, actor: Actor, cool_down: dt.timedelta) -> None:
    if current is None or current.status is not SubscriptionStatus.UNSUBSCRIBED:
        return
    if actor.is_the_person or not current.consent_source.startswith(SELF_SERVICE_SOURCE):
        return
    until = current.consent_at + cool_down
    if utcnow() < until:
        message = (
            f"the person unsubscribed themselves on {current.consent_at:%Y-%m-%d}; until "
            f"{until:%Y-%m-%d %H:%M} UTC (HUB_COOL_DOWN_DAYS) only they can subscribe again, "
            "from their preferences page"
        )
        raise Conflict(message, details=[{"field": "status", "message": message}])


def _evidence(actor: Actor, at: Any) -> dict[str, Any]:
    return {"consent_source": actor.source, "consent_actor": actor.name, "consent_at": at}
