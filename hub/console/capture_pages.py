"""What the development sink kept instead of sending (channels with no provider): the list,
newest first and a page at a time, narrowed by channel and address; and one message, its
headers, its text and its HTML shown as mail (a sandboxed frame, see `email_frame`)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from hub.console.auth import StaffDep
from hub.console.email_frame import frame_headers, framed
from hub.console.pages import page
from hub.db.models import Capture, Delivery
from hub.domain import Channel
from hub.web.deps import RuntimeDep
from hub.web.paging import RowId

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE = 50
SUMMARY = 120  # characters of a message's text that the list shows when it has no subject
CHANNELS = {"email": "E-mail", "sms": "SMS", "voice": "Voice call", "webhook": "Webhook"}
TITLES = {
    "email": "Captured e-mail",
    "sms": "Captured SMS",
    "voice": "Captured voice call",
    "webhook": "Captured webhook call",
}
BeforeQuery = Annotated[int | None, Query(ge=1, le=2**63 - 1)]


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    when: str
    channel: str
    to: str
    summary: str


def _row(capture: Capture) -> Row:
    summary = capture.subject or " ".join((capture.text or "").split())
    if not summary and capture.body is not None:
        summary = capture.body.decode("utf-8", "replace")
    if len(summary) > SUMMARY:
        summary = summary[: SUMMARY - 1] + "…"
    return Row(
        id=capture.id,
        when=capture.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        channel=CHANNELS[capture.channel.value],
        to=capture.to,
        summary=summary or "(empty)",
    )


@router.get("/captures")
def captures(
    request: Request,
    *,
    staff: StaffDep,
    runtime: RuntimeDep,
    channel: Annotated[str, Query(max_length=20)] = "",
    to: Annotated[str, Query(max_length=2048)] = "",
    before: BeforeQuery = None,
) -> Response:
    """Newest first; `to` matches any part of the address, in any case."""
    errors = []
    if channel and channel not in CHANNELS:
        errors.append("Channel: choose one from the list.")
    needle = to.strip()
    query = select(Capture)
    if channel in CHANNELS:
        query = query.where(Capture.channel == Channel(channel))
    if needle:
        query = query.where(Capture.to.icontains(needle, autoescape=True))
    if before is not None:
        query = query.where(Capture.id < before)
    with runtime.reads() as session:
        found = list(session.scalars(query.order_by(Capture.id.desc()).limit(PAGE + 1)))
    kept = {"channel": channel, "to": to} if channel or needle else {}
    older = (
        f"/console/captures?{urlencode(kept | {'before': found[PAGE - 1].id})}"
        if len(found) > PAGE
        else None
    )
    newest = f"/console/captures?{urlencode(kept)}" if kept else "/console/captures"
    return page(
        request,
        "captures.html",
        "Captured messages",
        staff,
        status=422 if errors else 200,
        errors=errors,
        section="captures",
        rows=[_row(c) for c in found[:PAGE]],
        channels=CHANNELS,
        channel=channel,
        to=to,
        filtered=bool(channel or needle),
        older=older,
        newest=newest if before is not None else None,
    )


@router.get("/captures/{capture_id}")
def capture(capture_id: RowId, request: Request, staff: StaffDep, runtime: RuntimeDep) -> Response:
    """One message as it would have reached the person: its HTML in a frame that runs no
    script and has no origin, under a policy that lets only its own styles and images in."""
    with runtime.reads() as session:
        found = session.get(Capture, capture_id)
        notification_id = (
            session.scalar(select(Delivery.notification_id).where(Delivery.id == found.delivery_id))
            if found is not None and found.delivery_id is not None
            else None
        )
    if found is None:
        return page(
            request,
            "capture.html",
            "No such captured message",
            staff,
            status=404,
            section="captures",
            c=None,
            capture_id=capture_id,
        )
    body = None
    if found.body is not None:
        body = found.body.decode("utf-8", "replace")
        with contextlib.suppress(ValueError):  # not JSON: shown as it came
            body = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    response = page(
        request,
        "capture.html",
        TITLES[found.channel.value],
        staff,
        section="captures",
        c=found,
        channel=CHANNELS[found.channel.value],
        notification_id=notification_id,
        frame=framed(found.html) if found.html else None,
        body=body,
    )
    if found.html:
        response.headers.update(frame_headers())
    return response
