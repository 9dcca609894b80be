"""The tracked links' endpoints: `/t/c/{token}` redirects a click, `/t/o/{token}.gif` is the
open pixel. Both answer at once and hand the hit to the recorder (`hub.dispatch.engagement`).

A click goes only where the signed token says: a damaged or forged one gets the friendly
bad-link page, never a redirect. HEAD requests are answered like GET (mail filters check
links that way) and recorded as a machine's. A link older than `KEPT` still leads where it
did, but is no longer recorded.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from hub.db.base import utcnow
from hub.dispatch.engagement import Hit, Recorder
from hub.dispatch.tracked_links import BadToken, Tracked, TrackedLinks
from hub.domain import EngagementKind
from hub.runtime import Runtime
from hub.selfservice.links import Visit
from hub.web.deps import RuntimeDep

KEPT = dt.timedelta(days=400)  # a message's clicks and opens are recorded for this long
# The smallest transparent GIF (1x1, 43 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}
HEAD_MARK = "hub.head"  # set on the scope by hub.api.head.HeadAsGet


@dataclass
class Tracking:
    links: TrackedLinks
    recorder: Recorder

    @classmethod
    def build(cls, runtime: Runtime) -> Tracking:
        settings = runtime.settings
        return cls(
            links=TrackedLinks(settings.link_secrets(), public_url=settings.public_url),
            recorder=Recorder(
                runtime.sessions,
                settle=settings.tracking_settle_seconds,
                too_soon=settings.tracking_too_soon_seconds,
            ),
        )


async def get_tracking(request: Request) -> Tracking:
    # async: a plain def runs on a worker thread, a hop per click (hub/web/deps.py)
    tracking: Tracking = request.app.state.tracking
    return tracking


TrackingDep = Annotated[Tracking, Depends(get_tracking)]
router = APIRouter(include_in_schema=False)


@router.get("/t/c/{token}")
async def click(
    token: str, request: Request, runtime: RuntimeDep, tracking: TrackingDep
) -> Response:
    try:
        tracked = tracking.links.read(EngagementKind.CLICK, token)
    except BadToken:
        visit = Visit(request, runtime)
        return visit.message(visit.words("bad.title"), visit.words("bad.invalid"), status=404)
    _record(tracking, tracked, request)
    return RedirectResponse(str(tracked.url), status_code=302, headers=_NO_STORE)


@router.get("/t/o/{token}")
async def pixel(token: str, request: Request, tracking: TrackingDep) -> Response:
    try:
        tracked = tracking.links.read(EngagementKind.OPEN, token)
    except BadToken:  # still an image: a mail client would show a broken one otherwise
        return Response(PIXEL, status_code=404, media_type="image/gif", headers=_NO_STORE)
    _record(tracking, tracked, request)
    return Response(PIXEL, media_type="image/gif", headers=_NO_STORE)


def _record(tracking: Tracking, tracked: Tracked, request: Request) -> None:
    now = utcnow()
    if now - tracked.issued_at > KEPT:
        return
    tracking.recorder.add(
        Hit(
            tracked=tracked,
            method="HEAD" if request.scope.get(HEAD_MARK) else request.method,
            user_agent=request.headers.get("user-agent"),
            ip=request.client.host if request.client else None,
            at=now,
        )
    )
