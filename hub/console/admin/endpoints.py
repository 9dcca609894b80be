"""Event endpoints: other services' URLs that hear of timeline events. The list, creating one
(its signing secret shown once), changing it, disabling and enabling it, and what was sent to
it: recent messages and every attempt of one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from hub.console import forms
from hub.console.admin.common import (
    AdminDep,
    Problem,
    admin_page,
    missing,
    problem_from,
    show_once,
)
from hub.console.admin.once import Once
from hub.console.auth import SessionsDep, Staff
from hub.console.pages import back_to
from hub.db.models import EventEndpoint
from hub.domain import EventType, StaffRole
from hub.events import relay
from hub.runtime import Runtime
from hub.schemas.event_endpoints import EventEndpointIn, EventEndpointPatch
from hub.services import event_endpoints
from hub.services.errors import HubError, NotFound
from hub.web.deps import RuntimeDep
from hub.web.forms import first
from hub.web.paging import RowId

router = APIRouter(prefix="/console/admin/endpoints", include_in_schema=False)
RECENT = 20
FIRST_TYPE = f"event-{next(iter(EventType)).value}"  # where the summary sends "choose one"
DONE = {
    "saved": "Saved.",
    "disabled": "Disabled: events wait for it and are sent, in order, when it is enabled.",
    "enabled": "Enabled: what waited is sent from the next sweep on.",
}


@router.get("")
def endpoint_list(request: Request, staff: AdminDep, runtime: RuntimeDep) -> Response:
    with runtime.reads() as session:
        rows = event_endpoints.find(session, after_id=None, limit=500)
    return admin_page(request, "admin_endpoints.html", "Event endpoints", staff, endpoints=rows)


def _form(
    request: Request,
    staff: Staff,
    *,
    endpoint: EventEndpoint | None,
    values: dict[str, Any],
    problems: list[Problem] | None = None,
) -> Response:
    title = f"Change endpoint {endpoint.id}" if endpoint else "Add an event endpoint"
    return admin_page(
        request,
        "admin_endpoint_form.html",
        title,
        staff,
        problems=problems,
        endpoint=endpoint,
        values=values,
        event_types=list(EventType),
    )


def _posted(form: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "url": first(form, "url").strip(),
        "description": first(form, "description").strip(),
        "event_types": form.get("event_types", []),
    }


def _problems(exc: ValidationError) -> list[Problem]:
    """The schema's refusals, on the inputs they concern, in plain words."""
    found: dict[str, Problem] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "url"
        if field == "event_types":
            found.setdefault(field, Problem(FIRST_TYPE, "Choose at least one known event type"))
        elif field == "description":
            found.setdefault(field, Problem("description", "Description: " + error["msg"]))
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            found.setdefault("url", Problem("url", f"URL: {message}"))
    return list(found.values())


@router.get("/new")
def new_endpoint(request: Request, staff: AdminDep) -> Response:
    return _form(request, staff, endpoint=None, values={"event_types": []})


@router.post("/new")
async def create_endpoint(
    request: Request, staff: AdminDep, sessions: SessionsDep, runtime: RuntimeDep
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.ADMIN)
    values = _posted(form)
    if not values["url"]:
        problem = Problem("url", "Enter the URL that should receive the events")
        return _form(request, staff, endpoint=None, values=values, problems=[problem])
    try:
        body = EventEndpointIn.model_validate(values)
        with runtime.sessions() as session:
            endpoint = event_endpoints.create(
                session,
                actor=forms.staff_actor(request, staff),
                url=body.url,
                event_types=body.event_types,
                description=body.description,
                secret=None,
                allow_private=runtime.settings.webhook_allow_private,
            )
            session.commit()
            endpoint_id, secret = endpoint.id, endpoint.secret
    except ValidationError as exc:
        return _form(request, staff, endpoint=None, values=values, problems=_problems(exc))
    except HubError as exc:
        problems = [problem_from(exc, field="url")]
        return _form(request, staff, endpoint=None, values=values, problems=problems)
    response = back_to(f"/console/admin/endpoints/{endpoint_id}")
    pad = Once(sessions).hand_over(response, f"endpoint-{endpoint_id}", secret)
    response.headers["location"] = f"/console/admin/endpoints/{endpoint_id}/created?pad={pad}"
    return response


def _endpoint(runtime: Runtime, endpoint_id: int) -> EventEndpoint | None:
    with runtime.reads() as session:
        return session.get(EventEndpoint, endpoint_id)


@router.get("/{endpoint_id}/created")
def created_endpoint(
    endpoint_id: RowId,
    request: Request,
    *,
    staff: AdminDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
    pad: str = "",
) -> Response:
    endpoint = _endpoint(runtime, endpoint_id)
    if endpoint is None:
        return missing(request, staff, "No such event endpoint")
    return show_once(
        request,
        staff,
        sessions,
        what=f"endpoint-{endpoint_id}",
        pad=pad[:200],
        title=f"Endpoint {endpoint_id} added",
        label="Its signing secret",
        advice="The receiving service checks each request's webhook-signature header with "
        "it (Standard Webhooks). Give it to that service's owners now; this page will not "
        "show it again.",
        back=(f"/console/admin/endpoints/{endpoint_id}", f"Go to endpoint {endpoint_id}"),
    )


@router.get("/{endpoint_id}")
def endpoint_page(
    endpoint_id: RowId,
    request: Request,
    *,
    staff: AdminDep,
    runtime: RuntimeDep,
    done: str = "",
) -> Response:
    with runtime.reads() as session:
        try:
            endpoint = event_endpoints.get(session, endpoint_id)
        except NotFound:
            return missing(request, staff, "No such event endpoint")
        recent = event_endpoints.messages(
            session, endpoint_id, state=None, before_id=None, limit=RECENT
        )
    return admin_page(
        request,
        "admin_endpoint.html",
        f"Event endpoint {endpoint_id}",
        staff,
        notice=DONE.get(done),
        endpoint=endpoint,
        recent=recent,
    )


@router.get("/{endpoint_id}/edit")
def edit_endpoint(
    endpoint_id: RowId, request: Request, staff: AdminDep, runtime: RuntimeDep
) -> Response:
    endpoint = _endpoint(runtime, endpoint_id)
    if endpoint is None:
        return missing(request, staff, "No such event endpoint")
    values = {
        "url": endpoint.url,
        "description": endpoint.description or "",
        "event_types": endpoint.event_types,
    }
    return _form(request, staff, endpoint=endpoint, values=values)


@router.post("/{endpoint_id}/edit")
async def change_endpoint(
    endpoint_id: RowId,
    request: Request,
    *,
    staff: AdminDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.ADMIN)
    endpoint = _endpoint(runtime, endpoint_id)
    if endpoint is None:
        return missing(request, staff, "No such event endpoint")
    values = _posted(form)
    if not values["url"]:
        problem = Problem("url", "Enter the URL that should receive the events")
        return _form(request, staff, endpoint=endpoint, values=values, problems=[problem])
    try:
        body = EventEndpointPatch.model_validate(values)
        with runtime.sessions() as session:
            event_endpoints.update(
                session,
                endpoint_id,
                actor=forms.staff_actor(request, staff),
                url=body.url,
                event_types=body.event_types,
                description=body.description or "",
                allow_private=runtime.settings.webhook_allow_private,
            )
            session.commit()
    except ValidationError as exc:
        problems = _problems(exc)
        return _form(request, staff, endpoint=endpoint, values=values, problems=problems)
    except HubError as exc:
        problems = [problem_from(exc, field="url")]
        return _form(request, staff, endpoint=endpoint, values=values, problems=problems)
    return back_to(f"/console/admin/endpoints/{endpoint_id}?done=saved")


@router.post("/{endpoint_id}/state")
async def change_state(
    endpoint_id: RowId,
    request: Request,
    *,
    staff: AdminDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.ADMIN)
    enable = first(form, "action") == "enable"
    try:
        with runtime.sessions() as session:
            event_endpoints.update(
                session,
                endpoint_id,
                actor=forms.staff_actor(request, staff),
                enabled=enable,
                allow_private=runtime.settings.webhook_allow_private,
            )
            session.commit()
    except NotFound:
        return missing(request, staff, "No such event endpoint")
    done = "enabled" if enable else "disabled"
    return back_to(f"/console/admin/endpoints/{endpoint_id}?done={done}")


@router.get("/{endpoint_id}/messages/{message_id}")
def message_page(
    endpoint_id: RowId,
    message_id: RowId,
    request: Request,
    *,
    staff: AdminDep,
    runtime: RuntimeDep,
) -> Response:
    with runtime.reads() as session:
        try:
            log = event_endpoints.message(session, endpoint_id, message_id)
        except NotFound:
            return missing(request, staff, "No such message")
    return admin_page(
        request,
        "admin_endpoint_message.html",
        f"Message {message_id} to endpoint {endpoint_id}",
        staff,
        endpoint_id=endpoint_id,
        message=log.message,
        attempts=log.attempts,
        webhook_id=relay.webhook_id(message_id),
    )
