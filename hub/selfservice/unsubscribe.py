"""One-click unsubscribe (RFC 8058): `/unsubscribe/{token}`; GET asks, POST does. What the
POST does is hub.services.unsubscribes, which a mail to the unsubscribe mailbox uses too."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.preferences.tokens import Purpose
from hub.runtime import Runtime
from hub.selfservice import reasons
from hub.selfservice.links import Link, SelfService, ServiceDep, follow, manage_url
from hub.services import unsubscribes
from hub.services.unsubscribes import Done
from hub.web.deps import RuntimeDep
from hub.web.forms import read_form

router = APIRouter(include_in_schema=False)


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(
    token: str, request: Request, runtime: RuntimeDep, service: ServiceDep
) -> Response:
    """Asks; never acts (link scanners GET every URL in a message)."""
    with runtime.reads() as session:
        link = follow(service, session, Purpose.UNSUBSCRIBE, token, visitor=(request, runtime))
    if not isinstance(link, Link):
        return link
    topic, visit, t = link.topic, link.visit, link.visit.words
    if topic is not None and topic.required:
        return _required(link, service)
    ask = t("unsub.ask", topic=topic.name) if topic else t("unsub.all_ask")
    return visit.message(
        t("unsub.title"),
        ask,
        button=t("unsub.button"),
        action=request.url.path,
        csrf=None,
        # `from=page`: a person pressed the button here, so the answer may ask them why; a
        # mail client's own one-click POST has no one to ask.
        hidden=[("List-Unsubscribe", "One-Click"), ("from", "page")],
        manage_url=manage_url(service, link.contact),
    )


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe(
    token: str, request: Request, runtime: RuntimeDep, service: ServiceDep
) -> Response:
    """RFC 8058 one-click: works without cookies, JavaScript or a form token; takes effect in
    this request, so the next send already sees it."""
    form = await read_form(request)
    one_click = form.get("List-Unsubscribe") == ["One-Click"]
    on_page = form.get("from") == ["page"]
    return await run_in_threadpool(
        _unsubscribe, token, request, runtime, service, one_click=one_click, on_page=on_page
    )


def _unsubscribe(
    token: str,
    request: Request,
    runtime: Runtime,
    service: SelfService,
    *,
    one_click: bool,
    on_page: bool,
) -> Response:
    with runtime.sessions() as session:
        link = follow(service, session, Purpose.UNSUBSCRIBE, token, visitor=(request, runtime))
        if not isinstance(link, Link):
            return link
        visit, t = link.visit, link.visit.words
        actor = visit.actor.via("self-service.one-click" if one_click else "self-service")
        target = unsubscribes.Target(link.contact, link.topic, link.issued_at)
        done = unsubscribes.unsubscribe(session, target, actor)
        if done is Done.REQUIRED:
            return _required(link, service)
        session.commit()
        said = t("unsub.all_done") if link.topic is None else t("unsub.done", topic=link.topic.name)
        why = None
        if on_page:
            why = reasons.question(service, link.contact, page_path=request.url.path)
        return visit.message(
            t("unsub.title"), said, manage_url=manage_url(service, link.contact), why=why
        )


def _required(link: Link, service: SelfService) -> Response:
    """A required topic cannot be unsubscribed: say so, and offer the preferences page."""
    t = link.visit.words
    assert link.topic is not None
    return link.visit.message(
        t("unsub.title"),
        t("unsub.required", topic=link.topic.name),
        manage_url=manage_url(service, link.contact),
    )
