"""The preferences page a personal link opens: `/preferences/{token}`, viewed and saved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.preferences.tokens import Purpose
from hub.runtime import Runtime
from hub.selfservice import choices, reasons
from hub.selfservice.links import Link, SelfService, ServiceDep, Visit, check_form, follow
from hub.web.deps import RuntimeDep
from hub.web.forms import FormExpired, FormForged, read_form

router = APIRouter(include_in_schema=False)


@router.get("/preferences/{token}", response_class=HTMLResponse)
def preferences_page(
    token: str, request: Request, runtime: RuntimeDep, service: ServiceDep
) -> Response:
    with runtime.reads() as session:
        link = follow(service, session, Purpose.PREFERENCES, token, visitor=(request, runtime))
        if not isinstance(link, Link):
            return link
        model = choices.model(session, link.contact)
        return _preferences(link.visit, service, model, request.url.path)


def _preferences(
    visit: Visit,
    service: SelfService,
    model: choices.PageModel,
    path: str,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    return visit.page(
        "preferences.html",
        visit.words("title"),
        status=status,
        model=model,
        action=path,
        csrf=service.guard.token(path),
        **context,
    )


@router.post("/preferences/{token}", response_class=HTMLResponse)
async def save_preferences(
    token: str, request: Request, runtime: RuntimeDep, service: ServiceDep
) -> Response:
    form = await read_form(request)
    # The database work runs on a worker thread: on SQLite it may wait for the write lock,
    # which must never stall the event loop every other request shares.
    return await run_in_threadpool(_save_preferences, token, request, runtime, service, form)


def _save_preferences(
    token: str,
    request: Request,
    runtime: Runtime,
    service: SelfService,
    form: Mapping[str, Sequence[str]],
) -> Response:
    path = request.url.path
    with runtime.sessions() as session:
        link = follow(service, session, Purpose.PREFERENCES, token, visitor=(request, runtime))
        if not isinstance(link, Link):
            return link
        contact, visit = link.contact, link.visit
        t = visit.words
        try:
            check_form(service, request, path, form)
        except FormExpired:
            model = choices.model(session, contact)
            return _preferences(visit, service, model, path, notice=t("form_expired"))
        except FormForged:
            return visit.message(t("bad.title"), t("bad.invalid"), status=403)
        outcome = choices.apply(session, choices.model(session, contact), form, visit.actor, t)
        if outcome.errors:
            session.rollback()
            model = choices.model(session, contact)
            return _preferences(visit, service, model, path, status=422, errors=outcome.errors)
        session.commit()
        notice = t("saved") if outcome.changes else t("unchanged")
        model = choices.model(session, contact)
        why = None
        if outcome.left or outcome.left_all:
            why = reasons.question(
                service,
                contact,
                page_path=path,
                topics=outcome.left,
                everything=outcome.left_all,
            )
        return _preferences(
            visit, service, model, path, notice=notice, changes=outcome.changes, why=why
        )
