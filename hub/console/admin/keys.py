"""API keys: the list, creating one (its secret shown once, on the next page), revoking one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

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
from hub.db.models import ApiKey
from hub.domain import Scope, StaffRole
from hub.runtime import Runtime
from hub.services import apikeys
from hub.services.errors import HubError
from hub.web.deps import RuntimeDep
from hub.web.forms import first
from hub.web.paging import RowId

router = APIRouter(prefix="/console/admin/keys", include_in_schema=False)
SCOPES = (
    (Scope.NOTIFY, "Send notifications (POST /v1/notifications)."),
    (Scope.CONTACTS, "Read and change contacts, their subscriptions and preferences; import."),
    (Scope.CAMPAIGNS, "Create, schedule and follow campaigns."),
    (Scope.ADMIN, "Everything, including topics, templates, event endpoints and the audit log."),
    (Scope.METRICS, "Only GET /metrics: for a Prometheus scraper."),
)


@router.get("")
def key_list(
    request: Request,
    staff: AdminDep,
    runtime: RuntimeDep,
    revoked: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> Response:
    with runtime.reads() as session:
        keys = apikeys.everyone(session)
    gone = next((k.name for k in keys if k.id == revoked and k.revoked_at), None)
    notice = f"The key {gone} is revoked: requests with it are refused." if gone else None
    return admin_page(request, "admin_keys.html", "API keys", staff, keys=keys, notice=notice)


def _new_form(
    request: Request,
    staff: Staff,
    values: dict[str, list[str]],
    problems: list[Problem] | None = None,
) -> Response:
    return admin_page(
        request,
        "admin_key_new.html",
        "Create an API key",
        staff,
        problems=problems,
        name=first(values, "name"),
        chosen=set(values.get("scope", [])),
        scopes=SCOPES,
    )


@router.get("/new")
def new_key(request: Request, staff: AdminDep) -> Response:
    return _new_form(request, staff, {})


@router.post("/new")
async def create_key(
    request: Request, staff: AdminDep, sessions: SessionsDep, runtime: RuntimeDep
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.ADMIN)
    name = first(form, "name").strip()
    problems = []
    if not name:
        problems.append(Problem("name", "Enter a name: who the key is for"))
    try:
        scopes = [Scope(s) for s in form.get("scope", [])]
    except ValueError:
        scopes = []
    if not scopes:
        problems.append(Problem(f"scope-{Scope.NOTIFY.value}", "Choose at least one scope"))
    if problems:
        return _new_form(request, staff, form, problems)
    try:
        with runtime.sessions() as session:
            secret = apikeys.create(session, name, scopes, actor=forms.staff_actor(request, staff))
            key_id = apikeys.named(session, name).id
            session.commit()
    except HubError as exc:
        return _new_form(request, staff, form, [problem_from(exc, field="name")])
    response = back_to("/console/admin/keys")
    pad = Once(sessions).hand_over(response, f"key-{key_id}", secret)
    response.headers["location"] = f"/console/admin/keys/{key_id}/created?pad={pad}"
    return response


def _key(runtime: Runtime, key_id: int) -> ApiKey | None:
    with runtime.reads() as session:
        return session.get(ApiKey, key_id)


@router.get("/{key_id}/created")
def created_key(
    key_id: RowId,
    request: Request,
    *,
    staff: AdminDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
    pad: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    key = _key(runtime, key_id)
    if key is None:
        return missing(request, staff, "No such API key")
    return show_once(
        request,
        staff,
        sessions,
        what=f"key-{key_id}",
        pad=pad,
        title=f"API key {key.name} created",
        label="Its secret",
        advice="Store it now where the service that uses it reads its secrets: Hub keeps only "
        "a hash and cannot show it again. The service sends it as "
        "Authorization: Bearer <secret>.",
        back=("/console/admin/keys", "Back to the API keys"),
    )


@router.get("/{key_id}/revoke")
def revoke_page(key_id: RowId, request: Request, staff: AdminDep, runtime: RuntimeDep) -> Response:
    """Revoking cannot be undone: a page that says so, and one button."""
    key = _key(runtime, key_id)
    if key is None:
        return missing(request, staff, "No such API key")
    return admin_page(request, "admin_key_revoke.html", f"Revoke {key.name}?", staff, key=key)


@router.post("/{key_id}/revoke")
async def revoke_key(
    key_id: RowId,
    request: Request,
    *,
    staff: AdminDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    await forms.posted(request, staff, sessions, StaffRole.ADMIN)
    key = _key(runtime, key_id)
    if key is None:
        return missing(request, staff, "No such API key")
    with runtime.sessions() as session:
        apikeys.revoke(session, key.name, actor=forms.staff_actor(request, staff))
        session.commit()
    return back_to(f"/console/admin/keys?revoked={key_id}")
