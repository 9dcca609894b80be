"""Claim deliveries by a state transition before any provider is called.

A row moves `queued` -> `sending` in one UPDATE; a worker works only on the rows its UPDATE
returned, so two copies of the same job (at-least-once queues deliver some twice) cannot
both send. The claim is committed before sending: if the worker dies, the send lease runs
out and the sweeper, not a second worker, decides what happens next.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import or_, update
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


def claim(
    session: Session, ids: Sequence[int], *, now: dt.datetime, send_lease: dt.timedelta
) -> list[Claimed]:
    if not ids:
        return []
    statement = (
        update(Delivery)
        .where(
            Delivery.id.in_(ids),
            Delivery.state == DeliveryState.QUEUED,
            or_(Delivery.not_before.is_(None), Delivery.not_before <= now),
        )
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
