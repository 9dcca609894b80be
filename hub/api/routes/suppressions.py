"""/v1/suppressions: addresses never to use on a channel, and why."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from hub.api import errors
from hub.domain import Channel, SuppressionReason
from hub.schemas.base import Page
from hub.schemas.suppressions import SuppressionIn, SuppressionOut, checked_address
from hub.services import suppressions
from hub.services.errors import InvalidField
from hub.web.deps import ContactsScope, RuntimeDep, SessionDep, actor_for
from hub.web.paging import CursorQuery, Limit, RowId, page_of, position

router = APIRouter(prefix="/v1/suppressions", tags=["suppressions"])


@router.get(
    "",
    operation_id="suppressions.list",
    summary="List suppressions, or look an address up",
    response_model=Page[SuppressionOut],
)
def list_suppressions(
    _: ContactsScope,
    db: SessionDep,
    runtime: RuntimeDep,
    channel: Annotated[Channel | None, Query(description="Only this channel.")] = None,
    address: Annotated[
        str | None,
        Query(max_length=2048, description="With `channel`: this address (erased ones too)."),
    ] = None,
    reason: Annotated[SuppressionReason | None, Query(description="Only this reason.")] = None,
    limit: Limit = 100,
    cursor: CursorQuery = None,
) -> Any:
    """Oldest first, a page at a time (`next_cursor`). With `channel` and `address`, that
    address's suppressions, found by its keyed hash, so an erased person's are found too.
    Needs the `contacts` scope."""
    if address is not None:
        if channel is None:
            raise InvalidField("channel", "give the channel to look an address up")
        try:
            address = checked_address(channel, address)
        except ValueError as exc:
            raise InvalidField("address", str(exc)) from None
    rows = suppressions.find(
        db,
        hasher=runtime.hasher,
        channel=channel,
        address=address,
        reason=reason,
        after_id=position(cursor),
        limit=limit + 1,
    )
    return page_of(rows, limit, SuppressionOut.model_validate)


@router.post(
    "",
    operation_id="suppressions.create",
    summary="Suppress an address",
    response_model=SuppressionOut,
    status_code=201,
    responses={
        200: {"model": SuppressionOut, "description": "Already suppressed"},
        **errors.TOO_LARGE,
    },
)
def add_suppression(
    body: SuppressionIn,
    request: Request,
    response: Response,
    principal: ContactsScope,
    db: SessionDep,
    runtime: RuntimeDep,
) -> Any:
    """Suppress an address now: the next send to it is refused, whatever the subscription.

    201 when it is new, 200 with the existing one when the address was already suppressed.
    Written on the timelines of the contacts with that address. Needs the `contacts` scope."""
    row, created = suppressions.add(
        db,
        channel=body.channel,
        address=body.address,
        reason=body.reason,
        actor=actor_for(request, principal),
        hasher=runtime.hasher,
        note=body.note,
        expires_at=body.expires_at,
    )
    db.commit()
    response.status_code = 201 if created else 200
    return row


@router.delete(
    "/{suppression_id}",
    status_code=204,
    operation_id="suppressions.delete",
    summary="Lift a suppression",
    responses={
        204: {"description": "Lifted"},
        **errors.not_found("No suppression has this id"),
        **errors.conflict("An erasure suppression is kept; a cool-down ends by itself"),
    },
)
def remove_suppression(
    suppression_id: RowId,
    request: Request,
    principal: ContactsScope,
    db: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    """Lift a suppression; the removal is itself an event on the owners' timelines. Lifting a
    person's own STOP, complaint or opt-out leaves a `cool_down` suppression until
    HUB_COOL_DOWN_DAYS after it (only the person, replying START, lifts it sooner). Needs
    the `contacts` scope."""
    suppressions.remove(
        db,
        suppression_id,
        actor=actor_for(request, principal),
        cool_down=dt.timedelta(days=runtime.settings.cool_down_days),
    )
    db.commit()
    return Response(status_code=204)
