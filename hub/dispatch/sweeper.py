"""Crash recovery: find work whose lease ran out and hand it back to the queue.

It also starts scheduled notifications whose send_at has come (hub.services.notification_schedule).

The queue is not the truth. A notification still `accepted`, a delivery `queued` or
`deferred` past its `due_at`, or `sending` past its send lease, means a message was lost
(Redis flushed, a worker killed, a deferral come due). Several sweepers may run at once:
on PostgreSQL they skip each other's locked rows; SQLite serialises writers anyway.

A queue lease (five minutes) is long so that a deep queue is never fed twice; but when a
channel's queue is empty, a row queued on it more than `STRANDED_AFTER` ago that no worker
has claimed most likely lost its job with the queue (Redis restarted empty, an embedded
process restarted): it is taken back then, not when its lease runs out. A job a worker
still holds (prefetched, or a paced job between chunks, which marks its rows) may be
enqueued twice that way; the claim lets only one of them send.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Select, delete, or_, select, update
from sqlalchemy.orm import Session

from hub.db.models import (
    Delivery,
    EarlyCallback,
    IdempotencyKey,
    InboundReceipt,
    Notification,
    Topic,
)
from hub.dispatch.fanout import DISPATCHER
from hub.dispatch.retry import RESENDABLE
from hub.domain import (
    Channel,
    DeferralReason,
    DeliveryState,
    EventType,
    FailureReason,
    NotificationState,
)
from hub.queue import FAN_OUT_QUEUE, deliver_queue
from hub.services import notification_schedule, timeline

_S = TypeVar("_S", bound=Select)  # type: ignore[type-arg]
IDEMPOTENCY_KEPT = dt.timedelta(hours=48)  # RELIABILITY 8 asks for at least 24 h
RECEIPTS_KEPT = dt.timedelta(days=30)
EARLY_CALLBACKS_KEPT = dt.timedelta(days=1)
STRANDED_AFTER = dt.timedelta(seconds=45)  # a paced job marks its rows every 30 s or sooner
_TAKEN = (
    Delivery.id,
    Delivery.channel,
    Delivery.notification_id,
    Delivery.contact_id,
    Delivery.reason,
)


@dataclass
class Swept:
    fan_out: list[int] = field(default_factory=list)
    deliver: list[tuple[Channel, list[int]]] = field(default_factory=list)
    lost_in_flight: int = 0

    @property
    def empty(self) -> bool:
        return not (self.fan_out or self.deliver or self.lost_in_flight)


def sweep(
    session: Session,
    *,
    now: dt.datetime,
    queue_lease: dt.timedelta,
    batch_size: int,
    limit: int = 10_000,
    idle: frozenset[str] = frozenset(),
) -> Swept:
    """Claim due work by moving its lease forward; the caller commits, then enqueues.

    `idle`: the queues holding no job now (the work stranded on them is taken too).
    """
    swept = Swept()
    swept.fan_out = _due_notifications(
        session, now=now, queue_lease=queue_lease, stranded=FAN_OUT_QUEUE in idle
    )
    # Scheduled ones whose send_at has come (after the lost fan-outs, which skip them: their
    # new lease has not run out), so a notification goes within a sweep interval of it.
    swept.fan_out += notification_schedule.start_due(session, now=now, lease=queue_lease)
    swept.lost_in_flight = _lost_in_flight(session, now=now, queue_lease=queue_lease)
    due = session.execute(
        _locked(
            session,
            select(*_TAKEN)
            .where(
                Delivery.state.in_((DeliveryState.QUEUED, DeliveryState.DEFERRED)),
                Delivery.due_at <= now,
            )
            .order_by(Delivery.due_at)
            .limit(limit),
        )
    ).all()
    rows = list(due)
    empty = frozenset(c for c in Channel if deliver_queue(c) in idle)
    if empty and len(rows) < limit:
        rows += _stranded(session, now=now, idle=empty, limit=limit - len(rows))
    groups: dict[tuple[int, Channel], list[int]] = defaultdict(list)
    digests: dict[Channel, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.reason == DeferralReason.DIGEST:
            digests[row.channel][row.contact_id].append(row.id)
        else:
            groups[(row.notification_id, row.channel)].append(row.id)
    # The limit cuts through people's digests: bring each person's other due items along,
    # so every digest still goes as one message.
    waiting = sorted({c for by_person in digests.values() for c in by_person})
    seen = {r.id for r in rows}
    for start in range(0, len(waiting), 1000):
        for item in session.execute(
            _locked(
                session,
                select(Delivery.id, Delivery.channel, Delivery.contact_id).where(
                    Delivery.contact_id.in_(waiting[start : start + 1000]),
                    Delivery.reason == DeferralReason.DIGEST,
                    Delivery.state.in_((DeliveryState.QUEUED, DeliveryState.DEFERRED)),
                    Delivery.due_at <= now,
                ),
            )
        ):
            if item.id not in seen:
                digests[item.channel][item.contact_id].append(item.id)
    for (_, channel), ids in groups.items():
        for start in range(0, len(ids), batch_size):
            swept.deliver.append((channel, ids[start : start + batch_size]))
    for channel, people in digests.items():
        swept.deliver.extend((channel, ids) for ids in _whole(people.values(), batch_size))
    taken = [i for _, ids in swept.deliver for i in ids]
    if taken:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(taken))
            .values(state=DeliveryState.QUEUED, due_at=now + queue_lease, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return swept


def _stranded(
    session: Session, *, now: dt.datetime, idle: frozenset[Channel], limit: int
) -> list[Any]:
    """Rows queued on an empty queue, leased long ago and claimable now: their job was lost."""
    return list(
        session.execute(
            _locked(
                session,
                select(*_TAKEN)
                .where(
                    Delivery.state == DeliveryState.QUEUED,
                    Delivery.channel.in_(sorted(idle)),
                    Delivery.due_at > now,
                    Delivery.updated_at <= now - STRANDED_AFTER,
                    or_(Delivery.not_before.is_(None), Delivery.not_before <= now),
                )
                .order_by(Delivery.id)
                .limit(limit),
            )
        ).all()
    )


def _whole(people: Iterable[list[int]], size: int) -> Iterator[list[int]]:
    """Batches of about `size` deliveries that never split one person's digest items."""
    batch: list[int] = []
    for ids in people:
        if batch and len(batch) + len(ids) > size:
            yield batch
            batch = []
        batch.extend(ids)
    if batch:
        yield batch


def forget_expired_keys(session: Session, *, now: dt.datetime) -> None:
    """Idempotency keys past their 48 h (their answers are no longer replayed), and inbound
    receipts past a month (far beyond any provider's webhook retries), and early callbacks
    no send claimed within a day (another system's messages on the same account)."""
    session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < now - IDEMPOTENCY_KEPT)
    )
    session.execute(delete(InboundReceipt).where(InboundReceipt.received_at < now - RECEIPTS_KEPT))
    session.execute(
        delete(EarlyCallback).where(EarlyCallback.received_at < now - EARLY_CALLBACKS_KEPT)
    )


def _locked(session: Session, query: _S) -> _S:
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def _due_notifications(
    session: Session, *, now: dt.datetime, queue_lease: dt.timedelta, stranded: bool
) -> list[int]:
    """Fan-outs whose lease ran out; with `stranded` (the fan-out queue is empty), also
    those leased more than STRANDED_AFTER ago (each fan-out step renews the lease)."""
    # (never later than a plain lease that ran out: a lease may be shorter than that)
    due = max(now, now + queue_lease - STRANDED_AFTER) if stranded else now
    ids = list(
        session.scalars(
            _locked(
                session,
                select(Notification.id).where(
                    Notification.state == NotificationState.ACCEPTED, Notification.due_at <= due
                ),
            )
        )
    )
    if ids:
        session.execute(
            update(Notification)
            .where(Notification.id.in_(ids))
            .values(due_at=now + queue_lease)
            .execution_options(synchronize_session=False)
        )
    return ids


def _lost_in_flight(session: Session, *, now: dt.datetime, queue_lease: dt.timedelta) -> int:
    """`sending` past its lease: the worker died between claiming and recording.

    The provider may have the message. E-mail and webhooks are resent under the same key
    (Message-ID, webhook-id) and flagged ambiguous; SMS and calls become `unknown`.
    """
    rows = session.execute(
        _locked(
            session,
            select(
                Delivery.id,
                Delivery.contact_id,
                Delivery.channel,
                Delivery.notification_id,
                Delivery.attempts,
                Topic.key,
            )
            .join(Notification, Notification.id == Delivery.notification_id)
            .join(Topic, Topic.id == Notification.topic_id)
            .where(Delivery.state == DeliveryState.SENDING, Delivery.due_at <= now),
        )
    ).all()
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for row in rows:
        resend = row.channel in RESENDABLE
        updates.append(
            {
                "id": row.id,
                "state": DeliveryState.QUEUED if resend else DeliveryState.UNKNOWN,
                "ambiguous": True,
                "due_at": now if resend else None,
                "reason": None if resend else FailureReason.WORKER_LOST,
                "updated_at": now,
            }
        )
        events.append(
            timeline.event_row(
                contact_id=row.contact_id,
                type=EventType.DELIVERY_UNKNOWN,
                actor=DISPATCHER,
                at=now,
                topic_key=row.key,
                channel=row.channel,
                reason=FailureReason.WORKER_LOST,
                changes={
                    "delivery_id": row.id,
                    "notification_id": row.notification_id,
                    "attempt": row.attempts,
                    "resending": resend,
                },
            )
        )
    if updates:
        session.execute(update(Delivery), updates)
        timeline.record_many(session, events)
    return len(rows)
