"""Replaying a dead letter: the work a message kept failing at goes back to the queue.

Deliveries that gave up start again from attempt 0; queued ones just go back in. The caller
commits, then enqueues what `replay` names (after the commit, so a worker finds the rows).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.db.models import DeadLetter, Delivery
from hub.domain import Channel, DeliveryState, FailureReason
from hub.queue import DELIVER, FAN_OUT
from hub.services.errors import Conflict, NotFound


@dataclass
class Replayed:
    letter: DeadLetter
    fan_out: int | None = None  # the notification to fan out again
    deliveries: dict[Channel, list[int]] = field(default_factory=dict)


def replay(
    session: Session, dead_letter_id: int, *, now: dt.datetime, queue_lease: dt.timedelta
) -> Replayed:
    """Raises NotFound, or Conflict when it was replayed already."""
    letter = session.get(DeadLetter, dead_letter_id, with_for_update=True)
    if letter is None:
        raise NotFound(f"no dead letter {dead_letter_id}")
    if letter.replayed_at is not None:
        raise Conflict(f"dead letter {dead_letter_id} was replayed at {letter.replayed_at}")
    letter.replayed_at = now
    replayed = Replayed(letter)
    if letter.actor == FAN_OUT and letter.args:
        replayed.fan_out = int(letter.args[0])
    if letter.actor == DELIVER:
        ids = _delivery_ids(letter.args)
        session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_(ids),
                Delivery.state == DeliveryState.FAILED,
                Delivery.reason == FailureReason.GAVE_UP,
            )
            .values(
                state=DeliveryState.QUEUED,
                attempts=0,
                not_before=None,
                reason=None,
                due_at=now + queue_lease,
                updated_at=now,
            )
        )
        rows = session.execute(
            select(Delivery.id, Delivery.channel).where(
                Delivery.id.in_(ids), Delivery.state == DeliveryState.QUEUED
            )
        ).all()
        for row in rows:
            replayed.deliveries.setdefault(row.channel, []).append(row.id)
    return replayed


def _delivery_ids(args: list[Any]) -> list[int]:
    """A parked `deliver_batch` message carries (channel, ids); a delivery that gave up, ids."""
    values = args[-1] if args and isinstance(args[-1], list) else args
    return [int(v) for v in values if isinstance(v, int | str) and str(v).isdigit()]
