"""Why a message went, waited or was refused: the resolver's rules, step by step.

For a delivery, the rules are evaluated at the moment of its decision with the person's
data as it stands now (so a later STOP shows), beside what was recorded then. For a contact
and a topic, at any moment asked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from hub.db.models import Contact, Delivery, Notification, Topic
from hub.dispatch import audience
from hub.dispatch.pacing import Pacing
from hub.domain import Channel
from hub.preferences.model import Caps, Resolution, Step
from hub.preferences.resolver import resolve
from hub.services.errors import NotFound
from hub.services.hashing import AddressHasher


def for_contact(
    session: Session,
    contact: Contact,
    topic: Topic,
    *,
    at: dt.datetime,
    hasher: AddressHasher,
    caps: Caps,
) -> dict[str, Any]:
    steps: list[Step] = []
    resolution = _resolve(session, contact.id, topic, at=at, hasher=hasher, steps=steps, caps=caps)
    return {
        "contact": contact.external_id,
        "topic": topic.key,
        "evaluated_at": at,
        "outcome": _outcome(resolution),
        "rules": [_step(s) for s in steps],
    }


def for_delivery(
    session: Session, delivery_id: int, *, hasher: AddressHasher, caps: Caps
) -> dict[str, Any]:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}")
    notification = session.get_one(Notification, delivery.notification_id)
    topic = session.get_one(Topic, notification.topic_id)
    contact = session.get(Contact, delivery.contact_id)
    at = delivery.created_at
    steps: list[Step] = []
    if contact is not None:
        moment = at
        if notification.local_at or notification.throttle:
            pacing = Pacing(notification, {})
            moment = pacing.moment(contact.timezone, at)
            if notification.local_at:
                steps.append(
                    Step(
                        "local_time",
                        "defer" if moment > at else "pass",
                        f"{notification.local_at} in {contact.timezone}",
                        delivery.channel,
                    )
                )
            if notification.throttle:
                steps.append(
                    Step(
                        "throttle", "pass", f"{notification.throttle} per minute", delivery.channel
                    )
                )
        _resolve(
            session,
            contact.id,
            topic,
            at=moment,
            hasher=hasher,
            steps=steps,
            caps=caps,
            excluding=delivery.notification_id,
        )
    rules = [s for s in steps if s.channel in (None, delivery.channel)]
    return {
        "delivery": {
            "id": delivery.id,
            "notification_id": delivery.notification_id,
            "contact": contact.external_id if contact else None,
            "channel": delivery.channel.value,
            "state": delivery.state.value,
            "reason": delivery.reason,
            "due_at": delivery.due_at,
            "attempts": delivery.attempts,
            "provider": delivery.provider,
            "error_code": delivery.error_code,
            "error": delivery.error,
        },
        "topic": topic.key,
        "evaluated_at": at,
        "rules": [_step(s) for s in rules],
        "note": "the rules at the moment of the decision, with the person's data as it is now",
    }


def _resolve(
    session: Session,
    contact_id: int,
    topic: Topic,
    *,
    at: dt.datetime,
    hasher: AddressHasher,
    steps: list[Step],
    caps: Caps,
    excluding: int = 0,
) -> Resolution:
    view = audience.topic_view(topic, caps)
    (recipient,) = audience.load(
        session,
        topic.id,
        [contact_id],
        hasher=hasher,
        now=at,
        count_for=audience.counts_for(view, excluding),
    )
    return resolve(
        contact=recipient.view,
        topic=view,
        history=recipient.history,
        subscription=recipient.subscription,
        preferences=recipient.preferences,
        suppressions=recipient.suppressions,
        moment=at,
        trace=steps,
    )


def _outcome(resolution: Resolution) -> dict[str, Any]:
    return {
        "send_now": [c.value for c in resolution.send_now],
        "deferred": [
            {"channel": d.channel.value, "until": d.until, "reason": d.reason.value}
            for d in resolution.deferred
        ],
        "refused": [
            {"channel": r.channel.value, "reason": r.reason.value, "detail": r.detail}
            for r in resolution.refused
        ],
    }


def _step(step: Step) -> dict[str, Any]:
    channel: Channel | None = step.channel
    return {
        "rule": step.rule,
        "verdict": step.verdict,
        "detail": step.detail,
        "channel": channel.value if channel else None,
    }
