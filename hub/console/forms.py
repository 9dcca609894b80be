"""What the console's forms share: the role and CSRF check of a POST, JSON typed into a
field, and why a form was refused, in the words its error summary shows."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from hub.console.auth import NotAllowed, Sessions, Staff
from hub.domain import ActorKind, StaffRole
from hub.services.actor import Actor
from hub.services.errors import HubError
from hub.web.forms import first, read_form


async def posted(
    request: Request, staff: Staff, sessions: Sessions, role: StaffRole
) -> dict[str, list[str]]:
    """The form of a POST that passed the role and CSRF checks."""
    if not staff.may(role):
        raise NotAllowed(role)
    form = await read_form(request)
    if not sessions.check_post(request, staff, first(form, "csrf")):
        raise NotAllowed(role)
    return form


def form_json(text: str) -> Any:
    """JSON typed into a form. Raises ValueError for bad JSON, nesting too deep to parse
    included (the parser raises RecursionError); `Attributes` then limits the depth kept."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def problems(exc: Exception) -> list[str]:
    """A refused form's errors: each field in error, a service's message, or bad JSON."""
    if isinstance(exc, ValidationError):
        return [
            f"{'.'.join(str(p) for p in e['loc'] if not isinstance(p, int)) or 'form'}: {e['msg']}"
            for e in exc.errors()
        ]
    if isinstance(exc, HubError):
        return [exc.message]
    return [f"data: {exc}"]  # json.loads


def staff_actor(request: Request, staff: Staff) -> Actor:
    """The signed-in staff member, as the audit log and the timeline record them."""
    return Actor(
        kind=ActorKind.STAFF,
        name=staff.email,
        source="console",
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def field_errors(exc: ValidationError) -> dict[str, str]:
    """The first error of each top-level field, in the schema's field order, worded without
    pydantic's "Value error, " prefix: what an error summary and inline messages show."""
    found: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "form"
        found.setdefault(field, error["msg"].removeprefix("Value error, "))
    return found
