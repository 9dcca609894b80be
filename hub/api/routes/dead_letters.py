"""/v1/dead-letters: messages that kept failing, parked; look at them and replay them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select, update

from hub.db.base import utcnow
from hub.db.models import DeadLetter, Delivery
from hub.domain import Channel, DeliveryState, FailureReason
from hub.queue import DELIVER, FAN_OUT
from hub.schemas.base import Out, Page
from hub.services.errors import Conflict, NotFound
from hub.web.deps import AdminScope, RuntimeDep, SessionDep
from hub.web.paging import CursorQuery, Limit, RowId, page_of, position

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])


class DeadLetterOut(Out):
    id: int
    actor: str
    args: list[Any]
    error: str
    failures: int
    created_at: dt.datetime
    replayed_at: dt.datetime | None


@router.get("", response_model=Page[DeadLetterOut])
def list_dead_letters(
    _: AdminScope, db: SessionDep, limit: Limit = 50, cursor: CursorQuery = None
) -> Any:
    """Newest first."""
    query = select(DeadLetter)
    if (before := position(cursor)) is not None:
        query = query.where(DeadLetter.id < before)
    rows = list(db.scalars(query.order_by(DeadLetter.id.desc()).limit(limit + 1)))
    return page_of(rows, limit, DeadLetterOut.model_validate)


@router.post("/{dead_letter_id}/replay", response_model=DeadLetterOut)
def replay_dead_letter(
    dead_letter_id: RowId, _: AdminScope, db: SessionDep, runtime: RuntimeDep
) -> Any:
    """Put the work back on the queue. Deliveries that gave up start again from attempt 0."""
    letter = db.get(DeadLetter, dead_letter_id)
    if letter is None:
        raise NotFound(f"no dead letter {dead_letter_id}")
    if letter.replayed_at is not None:
        raise Conflict(f"dead letter {dead_letter_id} was replayed at {letter.replayed_at}")
    now = utcnow()
    letter.replayed_at = now
    batches: dict[Channel, list[int]] = {}
    if letter.actor == DELIVER:
        ids = _delivery_ids(letter.args)
        lease = dt.timedelta(seconds=runtime.settings.queue_lease_seconds)
        # Deliveries that gave up start again from attempt 0; queued ones just go back in.
        db.execute(
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
                due_at=now + lease,
                updated_at=now,
            )
        )
        rows = db.execute(
            select(Delivery.id, Delivery.channel).where(
                Delivery.id.in_(ids), Delivery.state == DeliveryState.QUEUED
            )
        ).all()
        for row in rows:
            batches.setdefault(row.channel, []).append(row.id)
    db.commit()
    if letter.actor == FAN_OUT and letter.args:
        runtime.enqueuer.fan_out(int(letter.args[0]))
    for channel, ids in batches.items():
        runtime.enqueuer.deliver(channel, ids)
    return letter


def _delivery_ids(args: list[Any]) -> list[int]:
    """A parked `deliver_batch` message carries (channel, ids); a delivery that gave up, ids."""
    values = args[-1] if args and isinstance(args[-1], list) else args
    return [int(v) for v in values if isinstance(v, int | str) and str(v).isdigit()]
