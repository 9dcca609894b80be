"""Staff users: the list, adding one (with a password set or generated and shown once), and
one user's page: role, their own employee record (whose clients are their "My clients"),
disable or enable, a new password, sign out everywhere."""

from __future__ import annotations

from typing import Annotated, Any

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
from hub.db.models import Contact, StaffUser
from hub.domain import StaffRole
from hub.fields import normalize_email
from hub.runtime import Runtime
from hub.services import staff as staff_users
from hub.services.errors import HubError
from hub.web.deps import RuntimeDep
from hub.web.forms import first
from hub.web.paging import RowId

router = APIRouter(prefix="/console/admin/users", include_in_schema=False)
ROLES = (
    (StaffRole.VIEWER, "Viewer", "Reads every page; changes nothing."),
    (
        StaffRole.MARKETER,
        "Marketer",
        "Also topics, contacts, imports, segments, templates and campaigns.",
    ),
    (StaffRole.ADMIN, "Admin", "Also staff users, API keys, event endpoints and the audit log."),
)
DONE = {
    "created": "Staff user added. They can sign in now.",
    "role": "Role changed. It applies from their next page.",
    "disabled": "Disabled: they cannot sign in, and {ended} open session(s) ended.",
    "enabled": "Enabled: they can sign in again.",
    "password": "Password changed: {ended} open session(s) ended.",
    "signed-out": "Signed out everywhere: {ended} open session(s) ended.",
    "employee": "Employee record saved: their My clients page lists that employee's clients.",
    "unlinked": "Employee record removed: their My clients page has no one to show.",
}
Done = Annotated[str, Query(max_length=20)]
Ended = Annotated[int, Query(ge=0, le=10**6)]


@router.get("")
def user_list(request: Request, staff: AdminDep, runtime: RuntimeDep) -> Response:
    with runtime.reads() as session:
        users = staff_users.everyone(session)
    return admin_page(request, "admin_users.html", "Staff users", staff, users=users)


@router.get("/new")
def new_user(request: Request, staff: AdminDep) -> Response:
    return _new_form(request, staff, {"password_choice": "generate"})


def _new_form(
    request: Request, staff: Staff, values: dict[str, str], problems: list[Problem] | None = None
) -> Response:
    return admin_page(
        request,
        "admin_user_new.html",
        "Add a staff user",
        staff,
        problems=problems,
        values=values,
        roles=ROLES,
    )


@router.post("/new")
async def create_user(
    request: Request, staff: AdminDep, sessions: SessionsDep, runtime: RuntimeDep
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.ADMIN)
    values = {name: first(form, name) for name in ("email", "role", "password_choice")}
    values["email"] = values["email"].strip()
    role, problems = _role(values["role"])
    if not values["email"]:
        problems.insert(0, Problem("email", "Enter their e-mail address"))
    elif not _looks_like_email(values["email"]):
        problems.insert(
            0, Problem("email", "Enter an e-mail address in the right form, like ada@example.com")
        )
    password, more = _password(values["password_choice"], first(form, "password"))
    problems += more
    if problems or role is None or password is None:
        return _new_form(request, staff, values, problems)
    try:
        with runtime.sessions() as session:
            user = staff_users.create(
                session, values["email"], password, role, actor=forms.staff_actor(request, staff)
            )
            session.commit()
            user_id = user.id
    except HubError as exc:
        return _new_form(request, staff, values, [problem_from(exc, field="email")])
    how = values["password_choice"]
    if how != "generate":
        return back_to(f"/console/admin/users/{user_id}?done=created")
    return _hand_over(sessions, user_id, password)


def _looks_like_email(value: str) -> bool:
    try:
        normalize_email(value)
    except ValueError:
        return False
    return True


def _role(value: str) -> tuple[StaffRole | None, list[Problem]]:
    try:
        return StaffRole(value), []
    except ValueError:
        return None, [Problem("role-viewer", "Choose a role")]


def _password(choice: str, typed: str) -> tuple[str | None, list[Problem]]:
    """The password to set: generated, or typed (the service checks its length)."""
    if choice == "generate":
        return staff_users.generated_password(), []
    if choice == "set":
        if not typed:
            return None, [Problem("password", "Enter a password of at least 12 characters")]
        return typed, []
    return None, [Problem("password-generate", "Choose how the password is made")]


def _hand_over(sessions: Any, user_id: int, password: str) -> Response:
    """To the page that shows the generated password, once."""
    response = back_to(f"/console/admin/users/{user_id}")
    pad = Once(sessions).hand_over(response, f"user-{user_id}", password)
    response.headers["location"] = f"/console/admin/users/{user_id}/password?pad={pad}"
    return response


def _user(runtime: Runtime, user_id: int) -> StaffUser | None:
    with runtime.reads() as session:
        return session.get(StaffUser, user_id)


def _employee(runtime: Runtime, user: StaffUser) -> Contact | None:
    with runtime.reads() as session:
        return staff_users.employee_of(session, user)


def _user_page(
    request: Request,
    staff: Staff,
    user: StaffUser,
    *,
    notice: str | None = None,
    problems: list[Problem] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    employee = _employee(request.app.state.runtime, user)
    return admin_page(
        request,
        "admin_user.html",
        user.email,
        staff,
        problems=problems,
        notice=notice,
        user=user,
        employee=employee,
        roles=ROLES,
        yourself=user.email == staff.email,
        values=values or {"role": user.role.value, "password_choice": "generate"},
    )


@router.get("/{user_id}")
def user_page(
    user_id: RowId,
    request: Request,
    *,
    staff: AdminDep,
    runtime: RuntimeDep,
    done: Done = "",
    ended: Ended = 0,
) -> Response:
    user = _user(runtime, user_id)
    if user is None:
        return missing(request, staff, "No such staff user")
    notice = DONE[done].format(ended=ended) if done in DONE else None
    return _user_page(request, staff, user, notice=notice)


@router.get("/{user_id}/password")
def shown_password(
    user_id: RowId,
    request: Request,
    *,
    staff: AdminDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
    pad: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    user = _user(runtime, user_id)
    if user is None:
        return missing(request, staff, "No such staff user")
    return show_once(
        request,
        staff,
        sessions,
        what=f"user-{user_id}",
        pad=pad,
        title=f"Password for {user.email}",
        label="Their password",
        advice="Give it to them by a way only they can read. It is not stored anywhere "
        "but as a hash, and this page will not show it again.",
        back=(f"/console/admin/users/{user_id}", f"Back to {user.email}"),
    )


@router.post("/{user_id}/role")
async def change_role(
    user_id: RowId,
    request: Request,
    *,
    staff: AdminDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.ADMIN)
    user = _user(runtime, user_id)
    if user is None:
        return missing(request, staff, "No such staff user")
    role, problems = _role(first(form, "role"))
    if role is None:
        return _user_page(request, staff, user, problems=problems)
    try:
        with runtime.sessions() as session:
            staff_users.set_role(session, user.email, role, actor=forms.staff_actor(request, staff))
            session.commit()
    except HubError as exc:
        return _user_page(request, staff, user, problems=[problem_from(exc, field="role-admin")])
    return back_to(f"/console/admin/users/{user_id}?done=role")


@router.post("/{user_id}/employee")
async def change_employee(
    user_id: RowId,
    request: Request,
    *,
    staff: AdminDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.ADMIN)
    user = _user(runtime, user_id)
    if user is None:
        return missing(request, staff, "No such staff user")
    typed = first(form, "employee").strip()
    values = {"role": user.role.value, "password_choice": "generate", "employee": typed}
    try:
        with runtime.sessions() as session:
            staff_users.link_employee(
                session,
                user.email,
                typed,
                hasher=runtime.hasher,
                actor=forms.staff_actor(request, staff),
            )
            session.commit()
    except HubError as exc:
        problem = _employee_problem(exc)
        return _user_page(request, staff, user, problems=[problem], values=values)
    return back_to(f"/console/admin/users/{user_id}?done={'employee' if typed else 'unlinked'}")


def _employee_problem(exc: HubError) -> Problem:
    said = problem_from(exc, field=staff_users.EMPLOYEE_FIELD)
    message = said.message.removeprefix("Employee: ")
    return Problem(said.field, f"Employee record: {message}")


@router.post("/{user_id}/state")
async def change_state(
    user_id: RowId,
    request: Request,
    *,
    staff: AdminDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.ADMIN)
    user = _user(runtime, user_id)
    if user is None:
        return missing(request, staff, "No such staff user")
    disable = first(form, "action") == "disable"
    if disable and user.email == staff.email:
        problem = Problem("state", "You cannot disable yourself: ask another admin")
        return _user_page(request, staff, user, problems=[problem])
    try:
        with runtime.sessions() as session:
            ended = staff_users.set_disabled(
                session, user.email, disable, actor=forms.staff_actor(request, staff)
            )
            session.commit()
    except HubError as exc:
        return _user_page(request, staff, user, problems=[problem_from(exc, field="state")])
    done = "disabled" if disable else "enabled"
    return back_to(f"/console/admin/users/{user_id}?done={done}&ended={ended}")


@router.post("/{user_id}/password")
async def change_password(
    user_id: RowId,
    request: Request,
    *,
    staff: AdminDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.ADMIN)
    user = _user(runtime, user_id)
    if user is None:
        return missing(request, staff, "No such staff user")
    choice = first(form, "password_choice")
    values = {"role": user.role.value, "password_choice": choice}
    if choice == "generate" and user.email == staff.email:
        problem = Problem("password-set", 'Set your own password yourself: choose "Set one"')
        return _user_page(request, staff, user, problems=[problem], values=values)
    password, problems = _password(choice, first(form, "password"))
    if password is None:
        return _user_page(request, staff, user, problems=problems, values=values)
    try:
        with runtime.sessions() as session:
            ended = staff_users.set_password(
                session, user.email, password, actor=forms.staff_actor(request, staff)
            )
            session.commit()
    except HubError as exc:
        problem = problem_from(exc, field="password")
        return _user_page(request, staff, user, problems=[problem], values=values)
    if choice == "generate":
        return _hand_over(sessions, user_id, password)
    return back_to(f"/console/admin/users/{user_id}?done=password&ended={ended}")


@router.post("/{user_id}/sign-out")
async def sign_out(
    user_id: RowId,
    request: Request,
    *,
    staff: AdminDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    await forms.posted(request, staff, sessions, StaffRole.ADMIN)
    user = _user(runtime, user_id)
    if user is None:
        return missing(request, staff, "No such staff user")
    with runtime.sessions() as session:
        ended = staff_users.sign_out_everywhere(
            session, user.email, actor=forms.staff_actor(request, staff)
        )
        session.commit()
    return back_to(f"/console/admin/users/{user_id}?done=signed-out&ended={ended}")
