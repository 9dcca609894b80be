"""The form that asks for an e-mail address ("send me my link", subscribe): its page, the
address read from it, and the gate (form token, rate limits) a request passes before acting."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from hub.fields import normalize_email
from hub.selfservice.links import SelfService, Visit, check_form
from hub.web.forms import FormExpired, FormForged


def ask_email(
    visit: Visit,
    service: SelfService,
    path: str,
    title: str,
    *,
    status: int = 200,
    email: str = "",
    **context: Any,
) -> Response:
    t = visit.words
    defaults: dict[str, Any] = {
        "lines": [t("request.intro")],
        "email_label": "request.email",
        "button": t("request.button"),
        "ask_name": False,
        "topics": [],
    }
    return visit.page(
        "ask_email.html",
        title,
        status=status,
        action=path,
        csrf=service.guard.token(path),
        email=email,
        **(defaults | context),
    )


def checked_email(form: Mapping[str, Sequence[str]]) -> str | None:
    """The address given, normalised; None when it is missing or not an address."""
    given = (form.get("email") or [""])[0].strip()[:320]
    try:
        return normalize_email(given) if given else None
    except ValueError:
        return None


class Refused(enum.StrEnum):
    """Why a posted e-mail form is not acted on."""

    FORGED = "forged"  # another origin, or no valid form token
    EXPIRED = "expired"  # the form's token is too old: show the form again
    SLOW = "slow"  # too many requests from this address or for this e-mail


def gate(
    service: SelfService,
    request: Request,
    path: str,
    form: Mapping[str, Sequence[str]],
    email: str | None,
) -> Refused | None:
    """Why not to act on this request, or None to go ahead."""
    try:
        check_form(service, request, path, form)
    except FormForged:
        return Refused.FORGED
    except FormExpired:
        return Refused.EXPIRED
    ip = request.client.host if request.client else "?"
    if not service.per_ip.allow(f"{path}|{ip}"):
        return Refused.SLOW
    if email is not None and not service.per_address.allow(f"{path}|{email.lower()}"):
        return Refused.SLOW
    return None
