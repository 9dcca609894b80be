"""Unsubscribes attributed to a message: who left its topic, or everything, because of it.

The rule (said the same way on the console's pages and in the API's descriptions): a person
counts for a message when it reached them (its delivery is `sent` or `delivered`) and their
timeline then records them leaving the message's topic (`subscription.changed` to
`unsubscribed`) or unsubscribing from everything (`preferences.changed`, `unsubscribed_all`
on), after it was sent, within 30 days, and before the next message of that topic reached
them: a later message takes the credit for what happens after it. Someone who later came
back still counts; the message did make them leave.

The few people who left are found by their timeline events joined to the set's deliveries
through the index on contacts; the 30 days are checked here, in Python, on those few rows, so
no date arithmetic has to be written for each database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from hub.db.models import ContactEvent, Delivery, Notification
from hub.domain import DeliveryState, EventType, SubscriptionStatus

WINDOW = dt.timedelta(days=30)
WENT = (DeliveryState.SENT, DeliveryState.DELIVERED)
RULE = (
    "A person counts as unsubscribed because of this message when it reached them and they "
    "then left its topic, or unsubscribed from everything, within 30 days and before the "
    "next message of that topic reached them."
)


def attributed(session: Session, ids: Any, *, topic_id: int, topic_key: str) -> dict[int, set[str]]:
    """The people of the notifications `ids` (a list or a SELECT of ids, all on the topic
    `topic_id`) who left because of them: each contact id with the channels it reached them
    on before they left."""
    mine = aliased(Delivery)
    following = aliased(Delivery)
    its = aliased(Notification)
    left_topic = and_(
        ContactEvent.type == EventType.SUBSCRIPTION_CHANGED,
        ContactEvent.topic_key == topic_key,
        ContactEvent.changes[("status", "after")].as_string()
        == SubscriptionStatus.UNSUBSCRIBED.value,
    )
    left_all = and_(
        ContactEvent.type == EventType.PREFERENCES_CHANGED,
        ContactEvent.changes[("unsubscribed_all", "after")].as_boolean().is_(True),
    )
    # Another message of the topic that reached them after this one and before they left.
    overtaken = exists().where(
        following.contact_id == mine.contact_id,
        following.notification_id != mine.notification_id,
        following.state.in_(WENT),
        following.sent_at > mine.sent_at,
        following.sent_at <= ContactEvent.occurred_at,
        its.id == following.notification_id,
        its.topic_id == topic_id,
    )
    # The state is checked here, on the few rows found, not in the statement: a condition
    # on it would have SQLite walk the state index over every notification's deliveries.
    rows = session.execute(
        select(mine.contact_id, mine.channel, mine.state, mine.sent_at, ContactEvent.occurred_at)
        .join(ContactEvent, ContactEvent.contact_id == mine.contact_id)
        .where(
            mine.notification_id.in_(ids),
            mine.sent_at.is_not(None),
            ContactEvent.occurred_at >= mine.sent_at,
            or_(left_topic, left_all),
            ~overtaken,
        )
    )
    found: dict[int, set[str]] = {}
    for contact_id, channel, state, sent_at, left_at in rows:
        if state in WENT and sent_at is not None and left_at - sent_at <= WINDOW:
            found.setdefault(contact_id, set()).add(channel.value)
    return found


def by_channel(people: Mapping[int, Collection[str]]) -> dict[str, int]:
    """How many of `people` each channel reached."""
    counts: dict[str, int] = {}
    for channels in people.values():
        for channel in channels:
            counts[channel] = counts.get(channel, 0) + 1
    return counts
