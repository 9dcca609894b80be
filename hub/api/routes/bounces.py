"""/inbound/email/bounce: a mail system hands Hub a DSN or an abuse report, raw."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from hub.api.deps import NotifyScope, RuntimeDep, SessionDep
from hub.services import bounces

router = APIRouter(prefix="/inbound/email", tags=["inbound"])


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


class BounceOut(BaseModel):
    delivery_id: int
    kind: bounces.Kind
    suppressed: bool


@router.post(
    "/bounce",
    status_code=202,
    response_model=BounceOut,
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

    Matched to the delivery by the Message-ID Hub gave it; a hard bounce or a complaint
    suppresses the address before the next send. 422 names `message` when it is neither, or
    matches no delivery of Hub's.
    """
    recorded = bounces.record(db, bounces.parse(raw), hasher=runtime.hasher)
    db.commit()
    return BounceOut(
        delivery_id=recorded.delivery_id, kind=recorded.kind, suppressed=recorded.suppressed
    )
