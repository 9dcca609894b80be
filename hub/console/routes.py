"""Console pages: sign-in, dashboard and the bounces that matched no delivery."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from hub.console import auth
from hub.console.auth import SessionsDep, StaffDep
from hub.console.pages import back_to, page
from hub.db.base import utcnow
from hub.db.models import Campaign, Delivery, Notification, Topic
from hub.domain import DeliveryState
from hub.services import bounces
from hub.web.deps import RuntimeDep
from hub.web.forms import first, read_form

router = APIRouter(prefix="/console", include_in_schema=False)


def _sign_in_page(
    request: Request,
    sessions: auth.Sessions,
    *,
    status: int = 200,
    email: str = "",
    errors: list[str] | None = None,
) -> Response:
    nonce, csrf = sessions.sign_in_form(request)
    response = page(
        request,
        "login.html",
        "Sign in",
        None,
        status=status,
        email=email,
        csrf=csrf,
        errors=errors or [],
    )
    sessions.set_form_cookie(response, nonce)
    return response


@router.get("/login")
def login_page(request: Request, sessions: SessionsDep) -> Response:
    return _sign_in_page(request, sessions)


@router.post("/login")
async def login(request: Request, sessions: SessionsDep) -> Response:
    form = await read_form(request)
    email = first(form, "email")[:320]
    if not sessions.check_sign_in(request, first(form, "csrf")):
        # Another site's form (login CSRF), or a sign-in page left open too long.
        return _sign_in_page(
            request,
            sessions,
            status=403,
            email=email,
            errors=["This sign-in form has expired or came from another site. Sign in again."],
        )
    ip = request.client.host if request.client else "?"
    if not sessions.throttle.allow(ip):
        return _sign_in_page(
            request,
            sessions,
            status=429,
            email=email,
            errors=["Too many attempts. Wait a few minutes."],
        )
    # argon2 takes tens of milliseconds of CPU by design: not on the event loop.
    token = await run_in_threadpool(
        sessions.sign_in,
        email,
        first(form, "password")[:1000],
        ip=ip,
        user_agent=request.headers.get("user-agent"),
        replacing=request.cookies.get(sessions.cookie),
    )
    if token is None:
        return _sign_in_page(
            request, sessions, status=401, email=email, errors=["Wrong e-mail or password."]
        )
    response = back_to("/console")
    sessions.set_cookie(response, token)
    sessions.end_sign_in_form(response)
    return response


@router.post("/logout")
async def logout(request: Request, staff: StaffDep, sessions: SessionsDep) -> Response:
    form = await read_form(request)
    if not sessions.check_post(request, staff, first(form, "csrf")):
        raise auth.NotAllowed(staff.role)
    await run_in_threadpool(sessions.sign_out, request.cookies.get(sessions.cookie) or "")
    response = back_to("/console/login")
    sessions.clear_cookie(response)
    return response


@router.get("")
def dashboard(request: Request, staff: StaffDep, runtime: RuntimeDep) -> Response:
    since = utcnow() - dt.timedelta(hours=24)
    with runtime.reads() as session:
        health: dict[str, dict[str, int]] = {}
        for channel, state, count in session.execute(
            select(Delivery.channel, Delivery.state, func.count())
            .where(Delivery.updated_at >= since)
            .group_by(Delivery.channel, Delivery.state)
        ):
            health.setdefault(channel.value, {})[state.value] = count
        campaigns = campaign_rows(session, limit=10)
        notifications = [
            {
                "id": n.id,
                "topic": key,
                "source": n.source,
                "state": n.state.value,
                "created_at": n.created_at,
            }
            for n, key in session.execute(
                select(Notification, Topic.key)
                .join(Topic, Topic.id == Notification.topic_id)
                .order_by(Notification.id.desc())
                .limit(10)
            )
        ]
    states = [s.value for s in DeliveryState]
    return page(
        request,
        "dashboard.html",
        "Dashboard",
        staff,
        section="home",
        health=health,
        states=states,
        campaigns=campaigns,
        notifications=notifications,
    )


def campaign_rows(session: Any, *, limit: int) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "name": c.name,
            "topic": key,
            "state": c.state,
            "next_run_at": c.next_run_at,
            "created_by": c.created_by,
        }
        for c, key in session.execute(
            select(Campaign, Topic.key)
            .join(Topic, Topic.id == Campaign.topic_id)
            .order_by(Campaign.id.desc())
            .limit(limit)
        )
    ]


@router.get("/bounces")
def unmatched_bounces(request: Request, staff: StaffDep, runtime: RuntimeDep) -> Response:
    """Bounces and complaints that named no delivery of this installation's to that address:
    nothing was suppressed for them; a person may still want to look."""
    with runtime.reads() as session:
        rows = [
            (
                r.received_at.strftime("%Y-%m-%d %H:%M:%S"),
                r.kind.replace("_", " "),
                r.recipients or "",
                r.message_id or "",
                r.why,
            )
            for r in bounces.unmatched(session, before_id=None, limit=100)
        ]
    headers = ["When (UTC)", "Kind", "About", "Message-ID quoted", "Why it matched nothing"]
    return page(
        request,
        "listing.html",
        "Unmatched bounces",
        staff,
        section="bounces",
        headers=headers,
        rows=rows,
    )
