"""Claim deliveries by a state transition before any provider is called.

A row moves `queued` -> `sending` in one UPDATE; a worker works only on the rows its UPDATE
returned, so two copies of the same job (at-least-once queues deliver some twice) cannot
both send. The claim is committed before sending: if the worker dies, the send lease runs
out and the sweeper, not a second worker, decides what happens next.

Under load most jobs carry one delivery, and each job's overhead dwarfs its send: a claim
may top itself up with other ready rows of its channel (the same UPDATE, so the rule above
still holds); their own jobs then find nothing left and return (`any_claimable`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, exists, or_, select, update
from sqlalchemy.orm import Session

from hub.db.models import Delivery
from hub.domain import Channel, DeliveryState

if TYPE_CHECKING:  # escalation reads claimed deliveries: only the type is needed here
    from hub.dispatch.escalation import Check


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    notification_id: int
    contact_id: int
    channel: Channel
    address: str | None
    attempts: int  # including this one
    ambiguous: bool
    reason: str | None = None  # why it waited, if it did ("digest": its digest time came)
    step: int = 0  # its place in an escalation chain
    escalation: Check | None = None  # a later step's: why it goes or stops (escalation.check)


@dataclass(frozen=True, slots=True)
class TopUp:
    """Also claim up to `limit` other ready rows of `channel`, oldest first.

    Only rows with no reason: fresh from a fan-out or a retry's backoff over. A digest's
    items must go together in the job the sweeper made for them, and a row that waited
    (quiet hours, a throttle slot, an escalation step, a paused campaign) goes in its own
    job; a throttled or paused row is not `queued` and ready before its time anyway.
    """

    channel: Channel
    limit: int


def _ready(now: dt.datetime) -> ColumnElement[bool]:
    return or_(Delivery.not_before.is_(None), Delivery.not_before <= now)


def any_claimable(session: Session, ids: Sequence[int], *, now: dt.datetime) -> bool:
    """Whether a claim of `ids` could take anything: a read, so a job whose rows another
    job already took returns without taking SQLite's write lock."""
    return bool(
        ids
        and session.scalar(
            select(
                exists().where(
                    Delivery.id.in_(ids), Delivery.state == DeliveryState.QUEUED, _ready(now)
                )
            )
        )
    )


def claim(
    session: Session,
    ids: Sequence[int],
    *,
    now: dt.datetime,
    send_lease: dt.timedelta,
    top_up: TopUp | None = None,
) -> list[Claimed]:
    if not ids:
        return []
    wanted: ColumnElement[bool] = Delivery.id.in_(ids)
    if top_up is not None and top_up.limit > 0:
        # Ordered by the (state, due_at) index: a fresh row's due_at is its queue lease from
        # when it was queued, so this is oldest first without reading the rest of the table.
        others = (
            select(Delivery.id)
            .where(
                Delivery.state == DeliveryState.QUEUED,
                Delivery.channel == top_up.channel,
                Delivery.reason.is_(None),
                _ready(now),
                Delivery.id.not_in(ids),
            )
            .order_by(Delivery.due_at)
            .limit(top_up.limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            # Two workers topping up at once take different rows instead of queueing.
            others = others.with_for_update(skip_locked=True)
        wanted = or_(wanted, Delivery.id.in_(others.scalar_subquery()))
    statement = (
        update(Delivery)
        .where(wanted, Delivery.state == DeliveryState.QUEUED, _ready(now))
        .values(
            state=DeliveryState.SENDING,
            attempts=Delivery.attempts + 1,
            due_at=now + send_lease,
            updated_at=now,
        )
        .returning(
            Delivery.id,
            Delivery.notification_id,
            Delivery.contact_id,
            Delivery.channel,
            Delivery.address,
            Delivery.attempts,
            Delivery.ambiguous,
            Delivery.reason,
            Delivery.step,
        )
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(statement).all()
    return sorted(
        (
            Claimed(
                id=row.id,
                notification_id=row.notification_id,
                contact_id=row.contact_id,
                channel=row.channel,
                address=row.address,
                attempts=row.attempts,
                ambiguous=row.ambiguous,
                reason=row.reason,
                step=row.step,
            )
            for row in rows
        ),
        key=lambda c: c.id,
    )
