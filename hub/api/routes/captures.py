"""/v1/captures: what the development sink received for channels with no provider."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from hub.db.models import Capture
from hub.domain import Channel
from hub.schemas.base import Out, Page
from hub.web.deps import AdminScope, SessionDep
from hub.web.paging import CursorQuery, Limit, page_of, position

router = APIRouter(prefix="/v1/captures", tags=["captures"])


class CaptureOut(Out):
    id: int
    delivery_id: int | None
    channel: Channel
    to: str
    subject: str | None
    text: str | None
    html: str | None
    body: str | None
    created_at: dt.datetime


@router.get("", response_model=Page[CaptureOut])
def list_captures(
    _: AdminScope,
    db: SessionDep,
    limit: Limit = 50,
    cursor: CursorQuery = None,
    channel: Annotated[Channel | None, Query(description="Only this channel.")] = None,
    to: Annotated[str | None, Query(max_length=2048, description="Only this address.")] = None,
) -> Any:
    """Newest first."""
    query = select(Capture)
    if (before := position(cursor)) is not None:
        query = query.where(Capture.id < before)
    if channel is not None:
        query = query.where(Capture.channel == channel)
    if to is not None:
        query = query.where(Capture.to == to)
    rows = list(db.scalars(query.order_by(Capture.id.desc()).limit(limit + 1)))
    return page_of(rows, limit, _out)


def _out(row: Capture) -> CaptureOut:
    body = row.body.decode("utf-8", "replace") if row.body is not None else None
    return CaptureOut.model_validate(row).model_copy(update={"body": body})
