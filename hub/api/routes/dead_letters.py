"""/v1/dead-letters: messages that kept failing, parked; look at them and replay them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import Field
from sqlalchemy import select

from hub.api import errors
from hub.db.base import utcnow
from hub.db.models import DeadLetter
from hub.dispatch import dead_letters
from hub.schemas.base import Out, Page
from hub.web.deps import AdminScope, RuntimeDep, SessionDep
from hub.web.paging import CursorQuery, Limit, RowId, page_of, position

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])


class DeadLetterOut(Out):
    """Work that kept failing, parked."""

    id: int = Field(description="The dead letter's id.")
    actor: str = Field(
        description="The worker task that failed: `fan_out`, `deliver_batch` or `deliver_events`."
    )
    args: list[Any] = Field(description="What the task was given: notification or delivery ids.")
    error: str = Field(description="The last failure.")
    failures: int = Field(description="How many times it failed.")
    created_at: dt.datetime = Field(description="When it was parked (UTC).")
    replayed_at: dt.datetime | None = Field(description="When it was replayed; null: not yet.")


@router.get(
    "",
    operation_id="dead_letters.list",
    summary="List dead letters",
    response_model=Page[DeadLetterOut],
)
def list_dead_letters(
    _: AdminScope, db: SessionDep, limit: Limit = 50, cursor: CursorQuery = None
) -> Any:
    """Work that kept failing and was parked, newest first, a page at a time
    (`next_cursor`). Needs the `admin` scope."""
    query = select(DeadLetter)
    if (before := position(cursor)) is not None:
        query = query.where(DeadLetter.id < before)
    rows = list(db.scalars(query.order_by(DeadLetter.id.desc()).limit(limit + 1)))
    return page_of(rows, limit, DeadLetterOut.model_validate)


@router.post(
    "/{dead_letter_id}/replay",
    operation_id="dead_letters.replay",
    summary="Replay a dead letter",
    response_model=DeadLetterOut,
    responses={
        **errors.not_found("No dead letter has this id"),
        **errors.conflict("It was replayed already"),
    },
)
def replay_dead_letter(
    dead_letter_id: RowId, _: AdminScope, db: SessionDep, runtime: RuntimeDep
) -> Any:
    """Put the work back on the queue. Deliveries that gave up start again from attempt 0.

    Needs the `admin` scope."""
    lease = dt.timedelta(seconds=runtime.settings.queue_lease_seconds)
    replayed = dead_letters.replay(db, dead_letter_id, now=utcnow(), queue_lease=lease)
    db.commit()
    if replayed.fan_out is not None:
        runtime.enqueuer.fan_out(replayed.fan_out)
    for channel, ids in replayed.deliveries.items():
        runtime.enqueuer.deliver(channel, ids)
    return replayed.letter
