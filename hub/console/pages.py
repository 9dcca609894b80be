"""Render a console page (Hub's own templates, autoescaped) with the strict headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.console.auth import NotAllowed, SignInRequired, Staff
from hub.web.static import HEADERS as PUBLIC_HEADERS
from hub.web.static import SCRIPTED_CSP

# The console's URLs carry no secrets, so the browser may send its own origin as Referer
# and Origin, which the CSRF check reads.
HEADERS = PUBLIC_HEADERS | {"Referrer-Policy": "same-origin"}

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_DEFAULTS: dict[str, Any] = {"notice": None, "errors": [], "refresh": None, "section": ""}


def page(
    request: Request,
    template: str,
    title: str,
    staff: Staff | None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    company = request.app.state.runtime.settings.company_name
    values = _DEFAULTS | {"title": title, "staff": staff, "company": company} | context
    html = _ENV.get_template(template).render(**values)
    # A page that keeps itself up to date runs Hub's own live.js (see base.html).
    headers = HEADERS | {"Content-Security-Policy": SCRIPTED_CSP} if values["refresh"] else HEADERS
    return HTMLResponse(html, status_code=status, headers=headers)


def back_to(url: str) -> Response:
    """After a POST: see the result with a GET (a reload does not repeat the action)."""
    return RedirectResponse(url, status_code=303, headers=HEADERS)


def install(app: FastAPI) -> None:
    async def sign_in(request: Request, _: Exception) -> Response:
        return RedirectResponse("/console/login", status_code=303, headers=HEADERS)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotAllowed)
        return page(
            request,
            "listing.html",
            "Not allowed",
            None,
            status=403,
            errors=[f"Your role cannot do this: it needs {exc.role.value}."],
            headers=[],
            rows=[],
        )

    app.add_exception_handler(SignInRequired, sign_in)
    app.add_exception_handler(NotAllowed, refused)
