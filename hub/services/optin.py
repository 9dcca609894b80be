"""Double opt-in: a public form asks, a link in an e-mail confirms; only then it counts.

The request makes (or finds) the contact by e-mail and sets the subscription `pending`,
which the resolver refuses; the confirmation turns it `subscribed`. Both steps are events on
the person's timeline with their evidence: when, from which IP and browser, and the link's
issue time, so the consent can be shown later.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Contact, Subscription, Topic
from hub.domain import Channel, EventType, Frequency, SubscriptionStatus
from hub.services import contacts, subscriptions, timeline
from hub.services.actor import Actor

REQUEST_SOURCE = "self-service.subscribe-form"
CONFIRM_SOURCE = "self-service.double-opt-in"


@dataclass(frozen=True, slots=True)
class Requested:
    contact: Contact
    send: bool  # False when already subscribed: the page answers alike, nothing is sent


def request(
    session: Session, topic: Topic, *, email: str, name: str | None, locale: str, actor: Actor
) -> Requested:
    contact = session.scalar(
        select(Contact)
        .where(func.lower(Contact.email) == email.lower())
        .order_by(Contact.id)
        .limit(1)
    )
    if contact is None:
        given = {"email": email, "name": name, "locale": locale}
        contact, _ = contacts.put(
            session, f"subscriber:{email}", given, actor, allow_private_webhooks=False
        )
    current = subscriptions.find(session, contact, topic)
    if current is not None and current.status is SubscriptionStatus.SUBSCRIBED:
        return Requested(contact, send=False)
    now = utcnow()
    evidence = {"requested_at": now.isoformat(), "ip": actor.ip, "user_agent": actor.user_agent}
    if current is None:
        current = Subscription(
            contact_id=contact.id,
            topic_id=topic.id,
            status=SubscriptionStatus.PENDING,
            channels=[Channel.EMAIL.value],
            frequency=Frequency.IMMEDIATE,
            consent_source=REQUEST_SOURCE,
            consent_actor=actor.name,
            consent_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(current)
        before = None
    else:
        before = current.status.value
        current.status = SubscriptionStatus.PENDING
        current.channels = [Channel.EMAIL.value]
        current.consent_source, current.consent_actor, current.consent_at = (
            REQUEST_SOURCE,
            actor.name,
            now,
        )
        current.updated_at = now
    session.flush()
    timeline.record(
        session,
        contact_id=contact.id,
        type=EventType.SUBSCRIPTION_CHANGED,
        actor=actor,
        at=now,
        topic_key=topic.key,
        reason="confirmation_sent",
        changes={"status": {"before": before, "after": "pending"}, "evidence": evidence},
    )
    return Requested(contact, send=True)


def confirm(
    session: Session, contact: Contact, topic: Topic, actor: Actor, *, issued_at: dt.datetime
) -> bool:
    """Whether a pending subscription was confirmed now (False: nothing was pending)."""
    current = subscriptions.find(session, contact, topic)
    if current is None or current.status is not SubscriptionStatus.PENDING:
        return False
    now = utcnow()
    requested = current.consent_at
    current.status = SubscriptionStatus.SUBSCRIBED
    current.consent_source, current.consent_actor, current.consent_at = (
        CONFIRM_SOURCE,
        actor.name,
        now,
    )
    current.updated_at = now
    evidence = {
        "requested_at": requested.isoformat(),
        "link_issued_at": issued_at.isoformat(),
        "confirmed_at": now.isoformat(),
        "ip": actor.ip,
        "user_agent": actor.user_agent,
    }
    timeline.record(
        session,
        contact_id=contact.id,
        type=EventType.SUBSCRIPTION_CHANGED,
        actor=actor,
        at=now,
        topic_key=topic.key,
        reason="double_opt_in",
        changes={"status": {"before": "pending", "after": "subscribed"}, "evidence": evidence},
    )
    return True
