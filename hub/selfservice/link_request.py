"""The "send me my link" page: `/preferences` asks for an address and mails its link."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from hub.db.models import Contact
from hub.runtime import Runtime
from hub.selfservice.email_form import Refused, ask_email, checked_email, gate
from hub.selfservice.links import SelfService, ServiceDep, Visit, manage_url
from hub.selfservice.words import Words, language
from hub.services import account_mail as mail
from hub.web.deps import RuntimeDep
from hub.web.forms import read_form

router = APIRouter(include_in_schema=False)


@router.get("/preferences", response_class=HTMLResponse)
def request_link_page(request: Request, runtime: RuntimeDep, service: ServiceDep) -> Response:
    visit = Visit(request, runtime)
    return ask_email(visit, service, "/preferences", visit.words("request.title"))


@router.post("/preferences", response_class=HTMLResponse)
async def request_link(
    request: Request, runtime: RuntimeDep, service: ServiceDep, background: BackgroundTasks
) -> Response:
    """Always the same answer, sent before any look-up (in the background), so neither the
    text nor the time tells whether the address is known."""
    form = await read_form(request)
    visit = Visit(request, runtime)
    t = visit.words
    email = checked_email(form)
    verdict = gate(service, request, "/preferences", form, email)
    if verdict is Refused.FORGED:
        return visit.message(t("bad.title"), t("bad.invalid"), status=403)
    if verdict is Refused.EXPIRED:
        return ask_email(visit, service, "/preferences", t("request.title"))
    if email is None:
        return ask_email(
            visit,
            service,
            "/preferences",
            t("request.title"),
            status=422,
            errors=[t("request.bad_email")],
        )
    if verdict is Refused.SLOW:
        return visit.message(t("request.title"), t("slow_down"), status=429)
    background.add_task(_send_link, runtime, service, email, visit.words.lang)
    return visit.message(t("request.title"), t("request.sent"))


def _send_link(runtime: Runtime, service: SelfService, email: str, lang: str) -> None:
    settings = runtime.settings
    with runtime.sessions() as session:
        contact = session.scalar(
            select(Contact)
            .where(func.lower(Contact.email) == email.lower())
            .order_by(Contact.id)
            .limit(1)
        )
        if contact is None:
            return
        words = Words(language(contact.locale) if contact.locale else lang)
        url = f"{settings.public_url.rstrip('/')}{manage_url(service, contact)}"
        notification_id = mail.link(
            session,
            contact,
            url,
            words,
            processes=runtime.render_processes,
            company=settings.company_name,
            days=settings.link_ttl_days,
        )
        session.commit()
    runtime.enqueuer.try_fan_out(notification_id)
