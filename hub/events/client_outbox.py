"""The outbox of client events for employees (`ClientTopic`): which timeline events are worth
telling the people who look after a client, written in the event's own transaction.

`timeline.record_many` calls `emit` beside the webhooks' outbox. While no employee subscribes
to a client topic the cost is a dictionary look-up per write; otherwise the rows of a client
(not an employee: their own messages' outcomes are not news) wait in `client_event_messages`
for `hub.services.client_events.forward`, which tells the employees and deletes them.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from hub.db.base import Base, utcnow
from hub.db.models import ClientEventMessage, Contact, Subscription, Topic
from hub.domain import (
    ClientTopic,
    ContactKind,
    EventType,
    SubscriptionStatus,
    SuppressionReason,
)

# A subscription made or ended is seen by other processes within this many seconds; the
# process that made it sees it at once (`forget`).
DIRECTORY_TTL = 5.0
_MESSAGES = Base.metadata.tables[ClientEventMessage.__tablename__]
_KEYS = tuple(topic.value for topic in ClientTopic)

# The suppressions a person asked for: a refusal. A hard bounce is told as its failure.
REFUSING = frozenset(
    {
        SuppressionReason.SMS_STOP,
        SuppressionReason.VOICE_OPT_OUT,
        SuppressionReason.CARRIER_OPT_OUT,
        SuppressionReason.COMPLAINT,
    }
)
_UNSUBSCRIBED = SubscriptionStatus.UNSUBSCRIBED.value


def topic_of(row: Mapping[str, Any]) -> ClientTopic | None:
    """The client topic a timeline row (as `timeline.event_row` builds it) feeds, if any."""
    kind = row["type"]
    if kind in _ALWAYS:
        return _ALWAYS[kind]
    judge = _JUDGES.get(kind)
    return None if judge is None else judge(row.get("reason"), row.get("changes") or {})


def _reply(reason: Any, changes: Any) -> ClientTopic | None:
    return ClientTopic.REPLIES if reason is None else None  # STOP, HELP: not a reply


def _suppressed(reason: Any, changes: Any) -> ClientTopic | None:
    return ClientTopic.REFUSALS if reason in REFUSING else None


def _subscription(reason: Any, changes: Any) -> ClientTopic:
    left = _after(changes, "status") == _UNSUBSCRIBED
    return ClientTopic.REFUSALS if left else ClientTopic.PREFERENCES


def _preferences(reason: Any, changes: Any) -> ClientTopic:
    left = _after(changes, "unsubscribed_all") is True
    return ClientTopic.REFUSALS if left else ClientTopic.PREFERENCES


def _bounced(reason: Any, changes: Any) -> ClientTopic | None:
    # A complaint arrives as a bounce too; it is told once, as the refusal it is.
    return None if reason == SuppressionReason.COMPLAINT else ClientTopic.FAILURES


_ALWAYS: dict[str, ClientTopic] = {
    EventType.REFUSAL_REASON: ClientTopic.REFUSALS,
    EventType.DELIVERY_FAILED: ClientTopic.FAILURES,
    EventType.DELIVERY_CLICKED: ClientTopic.CLICKS,
}
_JUDGES: dict[str, Callable[[Any, Any], ClientTopic | None]] = {
    EventType.INBOUND_MESSAGE: _reply,
    EventType.SUPPRESSION_ADDED: _suppressed,
    EventType.SUBSCRIPTION_CHANGED: _subscription,
    EventType.PREFERENCES_CHANGED: _preferences,
    EventType.DELIVERY_BOUNCED: _bounced,
}


def _after(changes: Any, name: str) -> Any:
    change = changes.get(name) if isinstance(changes, Mapping) else None
    return change.get("after") if isinstance(change, Mapping) else None


class Directory:
    """The client topics someone subscribes to, per database, read again every
    `DIRECTORY_TTL` seconds."""

    def __init__(self, ttl: float = DIRECTORY_TTL) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._known: weakref.WeakKeyDictionary[Engine, tuple[float, frozenset[str]]] = (
            weakref.WeakKeyDictionary()
        )

    def topics(self, session: Session) -> frozenset[str]:
        engine = _engine(session)
        now = time.monotonic()
        with self._lock:
            known = self._known.get(engine)
        if known is not None and known[0] > now:
            return known[1]
        heard = frozenset(
            session.scalars(
                select(Topic.key)
                .join(Subscription, Subscription.topic_id == Topic.id)
                .where(Topic.key.in_(_KEYS), Subscription.status == SubscriptionStatus.SUBSCRIBED)
                .distinct()
            )
        )
        with self._lock:
            self._known[engine] = (now + self._ttl, heard)
        return heard

    def forget(self, session: Session) -> None:
        with self._lock:
            self._known.pop(_engine(session), None)


DIRECTORY = Directory()


def emit(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Keep each client's row that a subscribed client topic wants; how many were kept."""
    if not rows:
        return 0
    heard = DIRECTORY.topics(session)
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


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine
