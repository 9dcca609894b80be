"""/v1/captures: what the development sink received for channels with no provider."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select

from hub.db.models import Capture
from hub.domain import Channel
from hub.schemas.base import Out, Page
from hub.web.deps import AdminScope, SessionDep
from hub.web.paging import CursorQuery, Limit, page_of, position

router = APIRouter(prefix="/v1/captures", tags=["captures"])


class CaptureOut(Out):
    """One message the development sink received instead of a provider."""

    id: int = Field(description="The capture's id.")
    delivery_id: int | None = Field(description="The delivery it was; null when it was none.")
    channel: Channel = Field(description="The channel it was sent on.")
    to: str = Field(description="The address it was sent to.")
    subject: str | None = Field(description="E-mail: the subject.")
    text: str | None = Field(description="The text: e-mail text, SMS, what a call says.")
    html: str | None = Field(description="E-mail: the HTML.")
    body: str | None = Field(description="The raw payload received (a webhook's body), as text.")
    created_at: dt.datetime = Field(description="When it was captured (UTC).")


@router.get(
    "",
    operation_id="captures.list",
    summary="List captured messages",
    response_model=Page[CaptureOut],
)
def list_captures(
    _: AdminScope,
    db: SessionDep,
    limit: Limit = 50,
    cursor: CursorQuery = None,
    channel: Annotated[Channel | None, Query(description="Only this channel.")] = None,
    to: Annotated[str | None, Query(max_length=2048, description="Only this address.")] = None,
) -> Any:
    """What the development sink received for channels with no provider configured,
    newest first, a page at a time (`next_cursor`). Needs the `admin` scope."""
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
