"""Fan-out: turn one notification into delivery rows, one batch of recipients at a time.

Each batch is one transaction: the rows, the refusal and deferral events, and the cursor
move together, so a crash replays at most the batch in flight, and the unique
(notification, contact, channel) constraint makes the replay insert nothing twice.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.db.base import Base
from hub.db.models import Delivery, Notification, Topic
from hub.db.upsert import insert_ignoring_duplicates
from hub.dispatch import audience, escalation
from hub.dispatch.pacing import Pacing
from hub.domain import (
    ActorKind,
    Channel,
    DeliveryState,
    EventType,
    NotificationState,
    RefusalReason,
    delivery_reason,
)
from hub.preferences.model import Caps, Deferral, Refusal, Resolution, TopicView
from hub.preferences.resolver import resolve
from hub.services import timeline
from hub.services.actor import Actor
from hub.services.hashing import AddressHasher

DISPATCHER = Actor(kind=ActorKind.SYSTEM, name="dispatcher", source="dispatch")


@dataclass
class BatchResult:
    queued: dict[Channel, list[int]] = field(default_factory=lambda: defaultdict(list))
    recipients: int = 0
    done: bool = False


@dataclass
class Plan:
    """One batch, resolved outside any write transaction, to be applied if still current."""

    notification_id: int
    topic_key: str
    after: int  # the cursor the plan was made from
    cursor: int  # the cursor once applied
    rows: list[dict[str, Any]]
    recipients: int
    last: bool


def plan_batch(
    session: Session,
    notification_id: int,
    *,
    renderable: Collection[Channel],
    hasher: AddressHasher,
    batch_size: int,
    queue_lease: dt.timedelta,
    now: dt.datetime,
    caps: Caps = audience.NO_CAPS,
) -> Plan | None:
    """Read and resolve the next batch (a read-only session will do); None when done."""
    notification = session.get(Notification, notification_id)
    if notification is None or notification.state is not NotificationState.ACCEPTED:
        return None  # fanned out, cancelled, or still waiting for its send_at
    if notification.held:
        return None  # its campaign is paused; resuming hands it to the sweeper again
    topic = session.get_one(Topic, notification.topic_id)
    ids = audience.next_ids(
        session,
        topic,
        named=notification.recipients,
        after=notification.cursor,
        limit=batch_size,
        segment=notification.segment,
    )
    view = audience.topic_view(topic, caps)
    recipients = audience.load(
        session,
        topic.id,
        ids,
        hasher=hasher,
        now=now,
        count_for=audience.counts_for(view, notification.id),
    )
    chosen = {Channel(c) for c in notification.channels} if notification.channels else None
    pacing = Pacing(notification, _paced_before(session, notification))
    rows: list[dict[str, Any]] = []
    for _, mine in resolved_rows(
        notification.id,
        recipients,
        topic=view,
        chosen=chosen,
        renderable=renderable,
        pacing=pacing,
        steps=notification.escalation,
        now=now,
        queue_lease=queue_lease,
    ):
        rows.extend(mine)
    return Plan(
        notification_id=notification.id,
        topic_key=topic.key,
        after=notification.cursor,
        cursor=ids[-1] if ids else notification.cursor,
        rows=rows,
        recipients=len(ids),
        last=len(ids) < batch_size,
    )


def resolved_rows(
    notification_id: int,
    recipients: Iterable[audience.Recipient],
    *,
    topic: TopicView,
    chosen: set[Channel] | None,
    renderable: Collection[Channel],
    pacing: Pacing,
    steps: list[dict[str, Any]] | None,
    now: dt.datetime,
    queue_lease: dt.timedelta,
) -> Iterator[tuple[audience.Recipient, list[dict[str, Any]]]]:
    """Each recipient and the delivery rows the contact policy gives them: the resolver at
    their local moment, the sender's channels, the escalation chain, the throttle. The
    fan-out writes these rows; a campaign's dry run counts them."""
    for recipient in recipients:
        moment = pacing.moment(recipient.view.timezone, now)
        resolution = resolve(
            contact=recipient.view,
            topic=topic,
            subscription=recipient.subscription,
            preferences=recipient.preferences,
            suppressions=recipient.suppressions,
            moment=moment,
            history=recipient.history,
        )
        mine = rows_for(
            notification_id,
            recipient,
            resolution,
            chosen=chosen,
            renderable=renderable,
            now=now,
            queue_lease=queue_lease,
        )
        if steps:
            mine = escalation.plan(mine, steps, now=now)
        if pacing.paced:
            pace(mine, pacing, moment, now)
        yield recipient, mine


def apply_batch(
    session: Session, plan: Plan, *, queue_lease: dt.timedelta, now: dt.datetime
) -> BatchResult:
    """Write the plan if nobody moved the cursor since it was made; the caller commits.

    A plan made from a stale cursor (a duplicate fan-out job got there first) writes
    nothing: the other job has written, and enqueued, the same batch.
    """
    result = BatchResult()
    notification = session.scalars(
        select(Notification).where(Notification.id == plan.notification_id).with_for_update()
    ).one_or_none()
    if notification is None or notification.state is not NotificationState.ACCEPTED:
        result.done = True
        return result
    if notification.held:
        result.done = True  # paused since the plan was made: write nothing
        return result
    if notification.cursor != plan.after:
        return result  # stale: done stays False, so the caller plans again from the new cursor
    if plan.rows:
        table = Base.metadata.tables[Delivery.__tablename__]
        inserted = session.execute(
            insert_ignoring_duplicates(session, table).returning(
                table.c.id,
                table.c.contact_id,
                table.c.channel,
                table.c.state,
                table.c.reason,
                table.c.due_at,
            ),
            plan.rows,
        ).all()
        events = []
        for row in inserted:
            if row.state is DeliveryState.QUEUED:
                result.queued[row.channel].append(row.id)
            else:
                events.append(_event(row, plan.notification_id, plan.topic_key, now))
        timeline.record_many(session, events)
    result.recipients = plan.recipients
    notification.cursor = plan.cursor
    if plan.last:
        notification.state = NotificationState.FANNED_OUT
        notification.fanned_out_at = now
        result.done = True
    else:
        notification.due_at = now + queue_lease
    return result


def rows_for(
    notification_id: int,
    recipient: audience.Recipient,
    resolution: Resolution,
    *,
    chosen: set[Channel] | None,
    renderable: Collection[Channel],
    now: dt.datetime,
    queue_lease: dt.timedelta,
) -> list[dict[str, Any]]:
    rows = []
    outcomes: list[Channel | Deferral | Refusal] = [
        *resolution.send_now,
        *resolution.deferred,
        *resolution.refused,
    ]
    for outcome in outcomes:
        channel = outcome if isinstance(outcome, Channel) else outcome.channel
        if chosen is not None and channel not in chosen:
            continue  # the sender asked for other channels: not a decision about this person
        row: dict[str, Any] = {
            "notification_id": notification_id,
            "contact_id": recipient.id,
            "channel": channel,
            "address": recipient.view.addresses.get(channel),
            "attempts": 0,
            "step": 0,
            "ambiguous": False,
            "created_at": now,
            "updated_at": now,
            "not_before": None,
            "reason": None,
        }
        if isinstance(outcome, Refusal):
            row |= {
                "state": DeliveryState.SUPPRESSED,
                "reason": delivery_reason(outcome.reason, outcome.detail),
                "due_at": None,
            }
        elif channel not in renderable:
            row |= {
                "state": DeliveryState.SUPPRESSED,
                "reason": RefusalReason.NO_CONTENT,
                "due_at": None,
            }
        elif isinstance(outcome, Deferral):
            row |= {
                "state": DeliveryState.DEFERRED,
                "reason": outcome.reason,
                "due_at": outcome.until,
                "not_before": outcome.until,
            }
        else:
            row |= {"state": DeliveryState.QUEUED, "due_at": now + queue_lease}
        rows.append(row)
    return rows


def _paced_before(session: Session, notification: Notification) -> dict[Channel, int]:
    """How many deliveries per channel earlier batches paced (a throttle counts on from it)."""
    if not notification.throttle or notification.cursor == 0:
        return {}
    counted = session.execute(
        select(Delivery.channel, func.count())
        .where(
            Delivery.notification_id == notification.id,
            Delivery.state.not_in((DeliveryState.SUPPRESSED,)),
        )
        .group_by(Delivery.channel)
    )
    return {row[0]: int(row[1]) for row in counted}


def pace(rows: list[dict[str, Any]], pacing: Pacing, moment: dt.datetime, now: dt.datetime) -> None:
    """Hold one person's queued rows until their local time and their throttle slot."""
    for row in rows:
        if row["state"] is not DeliveryState.QUEUED:
            continue
        wait = pacing.due(row["channel"], moment, now)
        if wait is not None:
            until, reason = wait
            row |= {
                "state": DeliveryState.DEFERRED,
                "reason": reason,
                "due_at": until,
                "not_before": until,
            }


def _event(row: Any, notification_id: int, topic_key: str, now: dt.datetime) -> dict[str, Any]:
    deferred = row.state is DeliveryState.DEFERRED
    changes: dict[str, Any] = {"delivery_id": row.id, "notification_id": notification_id}
    if deferred:
        changes["until"] = row.due_at.isoformat()
    return timeline.event_row(
        contact_id=row.contact_id,
        type=EventType.DELIVERY_DEFERRED if deferred else EventType.DELIVERY_REFUSED,
        actor=DISPATCHER,
        at=now,
        changes=changes,
        topic_key=topic_key,
        channel=row.channel,
        reason=row.reason,
    )
