"""The contact log held against what a peer received: what was lost, what came twice, and
whether every copy beyond the first belongs to a send the log flags as ambiguous."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.db.models import ContactEvent, Delivery
from hub.domain import DeliveryState, EventType
from hub.services.message_keys import MessageKeys

ARRIVED = frozenset({DeliveryState.SENT, DeliveryState.DELIVERED})
UNSETTLED = frozenset({DeliveryState.QUEUED, DeliveryState.SENDING})
GAVE_UP = "gave_up"  # the reason on a delivery whose transient failures outlasted its attempts
Key = Callable[[Any], str]  # a delivery row -> what the peer sees of it


def message_id(keys: MessageKeys, domain: str = "localhost") -> Key:
    """The e-mail's Message-ID, stable across resends."""
    return lambda row: f"<{keys.key(row.notification_id, row.id, row.address or '')}@{domain}>"


def webhook_id(keys: MessageKeys) -> Key:
    """The Standard Webhooks `webhook-id`, stable across resends."""
    return lambda row: keys.key(row.notification_id, row.id, row.address or "")


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    at: dt.datetime
    changes: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Logged:
    """One delivery as the contact log holds it: its row and its timeline."""

    id: int
    notification_id: int
    address: str | None
    key: str
    state: DeliveryState
    ambiguous: bool
    attempts: int
    reason: str | None
    error_code: str | None
    trail: tuple[Event, ...]  # the timeline's events about this delivery, in order

    @property
    def events(self) -> Counter[str]:
        return Counter(e.type for e in self.trail)

    def of(self, kind: EventType) -> list[Event]:
        return [e for e in self.trail if e.type == kind]


def contact_log(
    sessions: sessionmaker[Session], notification_ids: Collection[int], *, key: Key
) -> dict[int, Logged]:
    """Every delivery of the notifications, with its timeline events, by delivery id."""
    with sessions() as session:
        rows = session.execute(
            select(
                Delivery.id,
                Delivery.notification_id,
                Delivery.state,
                Delivery.ambiguous,
                Delivery.attempts,
                Delivery.reason,
                Delivery.error_code,
                Delivery.address,
            ).where(Delivery.notification_id.in_(list(notification_ids)))
        ).all()
        trails: dict[int, list[Event]] = {row.id: [] for row in rows}
        events = select(ContactEvent.type, ContactEvent.occurred_at, ContactEvent.changes)
        for kind, at, changes in session.execute(events.order_by(ContactEvent.id)):
            trail = trails.get(int((changes or {}).get("delivery_id") or 0))
            if trail is not None:
                trail.append(Event(str(kind), at, changes))
    return {
        row.id: Logged(
            id=row.id,
            notification_id=row.notification_id,
            address=row.address,
            key=key(row),
            state=row.state,
            ambiguous=row.ambiguous,
            attempts=row.attempts,
            reason=row.reason,
            error_code=row.error_code,
            trail=tuple(trails[row.id]),
        )
        for row in rows
    }


@dataclass
class Tally:
    deliveries: int = 0
    delivered: int = 0  # deliveries the peer holds at least once
    lost: int = 0  # logged sent but not at the peer, left unsettled, or given up
    duplicated: int = 0  # copies beyond the first
    unknown: int = 0  # deliveries left `unknown`: the provider may or may not have them
    ambiguous: int = 0  # deliveries flagged ambiguous (cut mid-flight, resent or unknown)
    retried: int = 0  # deliveries that were refused for a while, then tried again
    unexpected: int = 0  # copies at the peer that no delivery accounts for
    problems: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, int]:
        return {
            "deliveries": self.deliveries,
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "unknown": self.unknown,
            "ambiguous": self.ambiguous,
            "retried": self.retried,
        }


def reconcile(logged: Iterable[Logged], received: Mapping[str, int]) -> Tally:
    """Hold each delivery against the copies the peer received of it.

    A delivery logged as sent must be at the peer, and logged sent exactly once; a copy
    beyond the first must belong to a delivery flagged ambiguous, and an ambiguous one must
    say so on the timeline (`delivery.unknown`); an `unknown` one may be at the peer once.
    """
    tally = Tally()
    problems = tally.problems
    seen: set[str] = set()
    for d in logged:
        seen.add(d.key)
        copies = received.get(d.key, 0)
        tally.deliveries += 1
        tally.ambiguous += d.ambiguous
        tally.unknown += d.state is DeliveryState.UNKNOWN
        tally.delivered += copies > 0
        tally.duplicated += max(0, copies - 1)
        tally.retried += EventType.DELIVERY_RETRYING in d.events
        sent_events = d.events.get(EventType.DELIVERY_SENT, 0)
        if d.state in ARRIVED:
            if copies == 0:
                tally.lost += 1
                problems.append(f"delivery {d.id} is logged {d.state} but the peer never got it")
            if sent_events != 1:
                problems.append(f"delivery {d.id} has {sent_events} delivery.sent events")
        elif d.state in UNSETTLED:
            tally.lost += 1
            problems.append(f"delivery {d.id} is still {d.state} after {d.attempts} attempts")
        elif d.reason == GAVE_UP:
            tally.lost += 1  # only transient errors end this way: a stall that outlived retries
            problems.append(f"delivery {d.id} was given up after {d.attempts} attempts")
        elif copies and not d.ambiguous:
            problems.append(f"delivery {d.id} is logged {d.state} but the peer has it")
        if copies > 1 and not d.ambiguous:
            problems.append(f"delivery {d.id} reached the peer {copies} times, not flagged")
        if copies > 1 and d.state is DeliveryState.UNKNOWN:
            problems.append(f"delivery {d.id} is unknown yet was sent {copies} times")
        unknown_events = d.events.get(EventType.DELIVERY_UNKNOWN, 0)
        if d.ambiguous != (unknown_events > 0):
            problems.append(
                f"delivery {d.id}: ambiguous={d.ambiguous} with {unknown_events} "
                "delivery.unknown events on the timeline"
            )
    for key, copies in received.items():
        if key not in seen:
            tally.unexpected += copies
            problems.append(f"the peer got {copies} x {key!r}, which no delivery accounts for")
    return tally
