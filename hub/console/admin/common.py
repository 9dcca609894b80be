"""What the administration pages share: the admin-only check, the page of a secret shown
once, and the problems a refused form shows (an error summary linking to each field in error)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from hub.console.admin.once import Once
from hub.console.auth import NotAllowed, Sessions, Staff, StaffDep
from hub.console.pages import page
from hub.domain import StaffRole
from hub.services.errors import HubError, InvalidField

SECTION = "admin"


def admin_only(staff: StaffDep) -> Staff:
    """Every administration page, read or write, is an admin's."""
    if not staff.may(StaffRole.ADMIN):
        raise NotAllowed(StaffRole.ADMIN)
    return staff


AdminDep = Annotated[Staff, Depends(admin_only)]


@dataclass(frozen=True, slots=True)
class Problem:
    """One field in error: `field` is the id of its input, which the summary links to."""

    field: str
    message: str


LABELS = {"url": "URL", "email": "E-mail address", "name": "Name", "password": "Password"}


def problem_from(exc: HubError, *, field: str) -> Problem:
    """A service's refusal on the field it names, or on `field` when it names none."""
    if isinstance(exc, InvalidField):
        label = LABELS.get(exc.field, exc.field.replace("_", " ").capitalize())
        return Problem(exc.field, f"{label}: {_said(exc)}")
    return Problem(field, sentence(exc.message))


def sentence(message: str) -> str:
    """A service's message as a sentence: "an API key..." becomes "An API key...", but an
    e-mail address or a key's name at the start keeps its case."""
    head, _, _ = message.partition(" ")
    return message[:1].upper() + message[1:] if head.isalpha() else message


def _said(exc: InvalidField) -> str:
    details = exc.details or [{}]
    return str(details[0].get("message", exc.message))


def admin_page(
    request: Request,
    template: str,
    title: str,
    staff: Staff,
    *,
    problems: list[Problem] | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """An administration page; with problems, a 422 with an error summary linking to each
    field and each field's own message beside it."""
    problems = problems or []
    return page(
        request,
        template,
        title,
        staff,
        status=422 if problems else status,
        section=SECTION,
        problems=problems,
        invalid={p.field: p.message for p in problems},
        **context,
    )


def show_once(
    request: Request,
    staff: Staff,
    sessions: Sessions,
    *,
    what: str,
    pad: str,
    title: str,
    label: str,
    advice: str,
    back: tuple[str, str],
) -> HTMLResponse:
    """The page that shows a secret the form before it made, once (see `once`)."""
    shelf = Once(sessions)
    secret = shelf.take(request, what, pad)
    response = admin_page(
        request,
        "admin_once.html",
        title,
        staff,
        secret=secret,
        label=label,
        advice=advice,
        back=back,
    )
    shelf.forget(response, what)
    return response


def missing(request: Request, staff: Staff, title: str) -> HTMLResponse:
    """A 404 page in the console's own frame, not the API's JSON."""
    return admin_page(request, "admin_missing.html", title, staff, status=404)
