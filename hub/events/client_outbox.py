"""The outbox of client events for employees (`ClientTopic`): which timeline events are worth
telling the people who look after a client, written in the event's own transaction.

`timeline.record_many` calls `emit` beside the webhooks' outbox. While no employee subscribes
to a client topic the cost is a dictionary look-up per write; otherwise the rows of a client
(not an employee: their own messages' outcomes are not news) wait in `client_event_messages`
for `hub.services.client_events.forward`, which tells the employees and deletes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hub.db.base import Base, utcnow
from hub.db.models import ClientEventMessage, Contact, Subscription, Topic
from hub.domain import (
    PERSONS_REFUSALS,
    ActorKind,
    ClientTopic,
    ContactKind,
    EventType,
    SubscriptionStatus,
    SuppressionReason,
)
from hub.events.per_engine import PerEngine

# A subscription made or ended is seen by other processes within this many seconds; the
# process that made it sees it at once (`forget`).
DIRECTORY_TTL = 5.0
_MESSAGES = Base.metadata.tables[ClientEventMessage.__tablename__]
_KEYS = tuple(topic.value for topic in ClientTopic)

_UNSUBSCRIBED = SubscriptionStatus.UNSUBSCRIBED.value
_THE_PERSON = frozenset({ActorKind.SELF_SERVICE.value, ActorKind.INBOUND.value})


def topic_of(row: Mapping[str, Any]) -> ClientTopic | None:
    """The client topic a timeline row (as `timeline.event_row` builds it) feeds, if any.

    What the client did is news; what the company did to many at once is not: an import's
    subscription changes feed nothing, and a preference change is told only when the person
    made it. A link scanner's click (`changes.machine`) is not the client's.
    """
    kind = row["type"]
    if kind in _ALWAYS:
        return _ALWAYS[kind]
    judge = _JUDGES.get(kind)
    return None if judge is None else judge(row)


def _reply(row: Mapping[str, Any]) -> ClientTopic | None:
    return ClientTopic.REPLIES if row.get("reason") is None else None  # STOP, HELP: no reply


def _suppressed(row: Mapping[str, Any]) -> ClientTopic | None:
    # The person's own refusal; a hard bounce is told as its failure, a manual one is staff's.
    return ClientTopic.REFUSALS if row.get("reason") in PERSONS_REFUSALS else None


def _changed(row: Mapping[str, Any], left: bool) -> ClientTopic | None:
    if str(row.get("source") or "").endswith(".import"):
        return None
    if left:
        return ClientTopic.REFUSALS
    return ClientTopic.PREFERENCES if str(row.get("actor_kind")) in _THE_PERSON else None


def _subscription(row: Mapping[str, Any]) -> ClientTopic | None:
    return _changed(row, _after(row.get("changes"), "status") == _UNSUBSCRIBED)


def _preferences(row: Mapping[str, Any]) -> ClientTopic | None:
    return _changed(row, _after(row.get("changes"), "unsubscribed_all") is True)


def _bounced(row: Mapping[str, Any]) -> ClientTopic | None:
    # A complaint arrives as a bounce too; it is told once, as the refusal it is.
    return None if row.get("reason") == SuppressionReason.COMPLAINT else ClientTopic.FAILURES


def _clicked(row: Mapping[str, Any]) -> ClientTopic | None:
    changes = row.get("changes")
    machine = isinstance(changes, Mapping) and changes.get("machine") is True
    return None if machine else ClientTopic.CLICKS


def _failed(row: Mapping[str, Any]) -> ClientTopic | None:
    # A digest fails as one message, recorded on each item: told once, by its lead.
    changes = row.get("changes")
    digest = changes.get("digest") if isinstance(changes, Mapping) else None
    lead = digest.get("lead_delivery_id") if isinstance(digest, Mapping) else None
    rider = lead is not None and isinstance(changes, Mapping) and changes.get("delivery_id") != lead
    return None if rider else ClientTopic.FAILURES


_ALWAYS: dict[str, ClientTopic] = {
    EventType.REFUSAL_REASON: ClientTopic.REFUSALS,
}
_JUDGES: dict[str, Callable[[Mapping[str, Any]], ClientTopic | None]] = {
    EventType.INBOUND_MESSAGE: _reply,
    EventType.SUPPRESSION_ADDED: _suppressed,
    EventType.SUBSCRIPTION_CHANGED: _subscription,
    EventType.PREFERENCES_CHANGED: _preferences,
    EventType.DELIVERY_BOUNCED: _bounced,
    EventType.DELIVERY_FAILED: _failed,
    EventType.DELIVERY_CLICKED: _clicked,
}


def _after(changes: Any, name: str) -> Any:
    change = changes.get(name) if isinstance(changes, Mapping) else None
    return change.get("after") if isinstance(change, Mapping) else None


def _heard(session: Session) -> frozenset[str]:
    """The client topics someone subscribes to."""
    return frozenset(
        session.scalars(
            select(Topic.key)
            .join(Subscription, Subscription.topic_id == Topic.id)
            .where(Topic.key.in_(_KEYS), Subscription.status == SubscriptionStatus.SUBSCRIBED)
            .distinct()
        )
    )


DIRECTORY = PerEngine(_heard, DIRECTORY_TTL)


def emit(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Keep each client's row that a subscribed client topic wants; how many were kept."""
    if not rows:
        return 0
    heard = DIRECTORY.get(session)
    if not heard:
        return 0
    wanted = [(row, topic) for row in rows if (topic := topic_of(row)) in heard]
    if not wanted:
        return 0
    clients = set(
        session.scalars(
            select(Contact.id).where(
                Contact.id.in_({row["contact_id"] for row, _ in wanted}),
                Contact.kind == ContactKind.CLIENT,
            )
        )
    )
    now = utcnow()
    messages = [
        {"contact_id": row["contact_id"], "topic_key": str(topic), "event": snapshot(row)}
        | {"created_at": now}
        for row, topic in wanted
        if row["contact_id"] in clients
    ]
    if messages:
        session.execute(insert(_MESSAGES), messages)
    return len(messages)


def snapshot(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row as JSON, without the IP and user agent: what the employee's message is made of."""
    at = row["occurred_at"]
    channel, kind = row.get("channel"), row.get("actor_kind")
    return {
        "type": str(row["type"]),
        "occurred_at": at.isoformat() if isinstance(at, dt.datetime) else str(at),
        "topic_key": row.get("topic_key"),
        "channel": str(channel) if channel is not None else None,
        "reason": str(row["reason"]) if row.get("reason") is not None else None,
        "changes": row.get("changes"),
        "actor_kind": str(kind) if kind is not None else None,
        "actor": row.get("actor"),
        "source": row.get("source"),
    }
