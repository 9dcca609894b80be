"""/inbound/email/bounce: a mail system hands Hub a DSN or an abuse report, raw; and the guard
every route that takes mail coming back shares: a database that is down is 503, not 500."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from hub.api import errors
from hub.channels.email.reports import Kind
from hub.schemas.base import Page
from hub.services import bounces
from hub.web.deps import AdminScope, NotifyScope, RuntimeDep, SessionDep
from hub.web.paging import CursorQuery, Limit, page_of, position

router = APIRouter(prefix="/inbound/email", tags=["inbound"])
reports = APIRouter(prefix="/v1/bounces", tags=["bounces"])
log = logging.getLogger(__name__)
RETRY_AFTER = "30"


def database_guard(request: Request) -> Iterator[None]:
    """A database that is down for now (refused or lost connections, a lock or a pool timing
    out: `bounces.TRANSIENT`) answers 503 with Retry-After, wherever it shows: in the route or
    in a dependency that runs after this one, the API-key lookup among them. A mail system or
    a provider then retries; a 500 reads as a fault of what it sent."""
    try:
        yield
    except bounces.TRANSIENT:
        log.warning(
            "%s: the database is unavailable; answered 503", request.url.path, exc_info=True
        )
        raise HTTPException(
            503,
            "the database is unavailable for now; nothing was recorded, retry later",
            headers={"Retry-After": RETRY_AFTER},
        ) from None


DatabaseGuard = Depends(database_guard)
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: errors.problem("The database is unavailable for now (Retry-After); nothing was recorded")
}


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


class BounceOut(BaseModel):
    """What Hub made of a report."""

    matched: bool = Field(
        description="Whether it named a delivery of Hub's to its address (false for a report "
        "that is not a bounce: nothing is matched for it)."
    )
    delivery_id: int | None = Field(
        description="The delivery it is about; null when unmatched or not a bounce."
    )
    kind: Kind = Field(
        description="What the report says of the delivery's address: `hard_bounce` (no such "
        "mailbox or domain: the delivery `bounced`, the address suppressed), `soft_bounce` "
        "(full, too large, or a relay gave up: counted once per address and day, the delivery "
        "`failed` when the report says so; the third day within a week suspends the address "
        "for a week), `blocked` (refused as spam or by policy: the delivery `failed`, nobody "
        "suppressed), `complaint` (the address suppressed for good) or `not_bounce` (a delay "
        "or delivery notice, an auto-reply: nothing changed or kept)."
    )
    suppressed: bool = Field(
        description="Whether the address is suppressed because of this report (a hard bounce, "
        "a complaint, the third day of soft bounces in a week); false for a duplicate."
    )
    duplicate: bool = Field(
        False,
        description="A copy of a report recorded before (a hard bounce or complaint on the same "
        "delivery; a soft bounce or block with the same status too): nothing changed.",
    )
    unmatched_id: int | None = Field(
        None,
        description="Where it is kept when it carried Hub's key but matched nothing (GET "
        "/v1/bounces/unmatched); null for a report with no key of Hub's, which is not kept.",
    )
    why: str | None = Field(None, description="Why it matched nothing, or why it changed nothing.")


class UnmatchedOut(BaseModel):
    """A report kept because it matched no delivery."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="The kept report's id.")
    received_at: dt.datetime = Field(description="When Hub received it (UTC).")
    kind: str = Field(
        description="hard_bounce, soft_bounce, blocked or complaint, as the report said."
    )
    why: str = Field(
        description="Why it matched no delivery, or (`could not be recorded: <error>`) why "
        "an ESP's event that names one could not be recorded."
    )
    message_id: str | None = Field(description="The original's Message-ID, as quoted.")
    recipients: str | None = Field(description="The addresses the report names.")
    status: str | None = Field(description="The report's status code, e.g. 5.1.1.")
    detail: str | None = Field(description="The diagnostic the mail system gave.")


@router.post(
    "/bounce",
    status_code=202,
    operation_id="inbound.email_bounce",
    summary="Hand Hub a bounce or complaint report",
    response_model=BounceOut,
    responses=errors.TOO_LARGE | UNAVAILABLE,
    dependencies=[DatabaseGuard],
    openapi_extra={
        "requestBody": {
            "required": True,
            # The report as received (message/rfc822 in spirit); any content type is read
            # as raw bytes, so a mail system's webhook can post it as it is.
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
def email_bounce(raw: RawBody, _: NotifyScope, db: SessionDep, runtime: RuntimeDep) -> Any:
    """A delivery-status notification (RFC 3464) or an ARF complaint (RFC 5965), as received.

    Matched to the delivery by the key in the Message-ID (or VERP address) Hub gave it, and
    only when the address the report names is the one that message went to: a hard bounce or a
    complaint then suppresses the address before the next send; a spam or policy block fails
    the delivery and suppresses nobody; soft bounces count once per address and day. A report
    that matches nothing (another installation's message, another address) changes nothing and
    is kept for staff (`matched: false`); a delay or delivery notice is answered with
    `kind: not_bounce` and neither acted on nor kept; a second copy of a report changes nothing
    (`duplicate: true`). 422 names `message` when it is not a DSN or ARF report. Needs the
    `notify` scope.
    """
    report = bounces.parse(raw)
    recorded = bounces.record(db, report, hasher=runtime.hasher, keys=runtime.message_keys)
    db.commit()
    return BounceOut(
        matched=recorded.delivery_id is not None,
        delivery_id=recorded.delivery_id,
        kind=recorded.kind,
        suppressed=recorded.suppressed,
        duplicate=recorded.duplicate,
        unmatched_id=recorded.unmatched_id,
        why=recorded.why,
    )


@reports.get(
    "/unmatched",
    operation_id="bounces.list_unmatched",
    summary="List bounce reports that matched nothing",
    response_model=Page[UnmatchedOut],
    responses=UNAVAILABLE,
    dependencies=[DatabaseGuard],
)
def unmatched_reports(
    _: AdminScope, db: SessionDep, limit: Limit = 100, cursor: CursorQuery = None
) -> Any:
    """Bounces and complaints that carried Hub's key but named no delivery of this
    installation's to that address, and ESP events that could not be recorded, newest first, a
    page at a time (`next_cursor`): nothing was changed for them. Needs the `admin` scope."""
    rows = bounces.unmatched(db, before_id=position(cursor), limit=limit + 1)
    return page_of(rows, limit, UnmatchedOut.model_validate)
