"""The public subscribe form with double opt-in: `/subscribe/{topic}` requests, the mailed
`/subscribe/confirm/{token}` confirms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hub.db.models import Topic
from hub.domain import Channel, SubscriptionStatus
from hub.preferences.tokens import Purpose
from hub.runtime import Runtime
from hub.selfservice.email_form import Refused, ask_email, checked_email, gate
from hub.selfservice.links import (
    Link,
    SelfService,
    ServiceDep,
    Visit,
    check_form,
    follow,
    manage_url,
)
from hub.selfservice.words import Words, language
from hub.services import account_mail as mail
from hub.services import optin, subscriptions
from hub.services.actor import Actor
from hub.web.deps import RuntimeDep
from hub.web.forms import FormExpired, FormForged, read_form

router = APIRouter(include_in_schema=False)


def _subscribable(session: Session, key: str) -> Topic | None:
    topic = session.scalar(select(Topic).where(Topic.key == key))
    if topic is None or not topic.public or topic.required:
        return None
    if Channel.EMAIL.value not in topic.allowed_channels:
        return None
    return topic


@router.get("/subscribe", response_class=HTMLResponse)
def subscribe_list(request: Request, runtime: RuntimeDep) -> Response:
    visit = Visit(request, runtime)
    with runtime.reads() as session:
        topics = [
            topic
            for topic in session.scalars(
                select(Topic).where(Topic.public, Topic.required.is_(False)).order_by(Topic.name)
            )
            if Channel.EMAIL.value in topic.allowed_channels
        ]
    return visit.message(visit.words("subscribe.list"), links=topics)


@router.get("/subscribe/{topic_key}", response_class=HTMLResponse)
def subscribe_page(
    topic_key: str, request: Request, runtime: RuntimeDep, service: ServiceDep
) -> Response:
    visit = Visit(request, runtime)
    with runtime.reads() as session:
        topic = _subscribable(session, topic_key)
    if topic is None:
        return visit.message(visit.words("bad.title"), visit.words("bad.invalid"), status=404)
    return _subscribe_form(visit, service, topic, request.url.path)


def _subscribe_form(
    visit: Visit, service: SelfService, topic: Topic, path: str, **context: Any
) -> Response:
    t = visit.words
    lines = [topic.description] if topic.description else []
    return ask_email(
        visit,
        service,
        path,
        t("subscribe.title", topic=topic.name),
        lines=lines,
        email_label="subscribe.email",
        button=t("subscribe.button"),
        ask_name=True,
        **context,
    )


@router.post("/subscribe/{topic_key}", response_class=HTMLResponse)
async def subscribe(
    topic_key: str,
    request: Request,
    runtime: RuntimeDep,
    service: ServiceDep,
    background: BackgroundTasks,
) -> Response:
    form = await read_form(request)
    visit = Visit(request, runtime)
    t = visit.words
    with runtime.reads() as session:
        topic = _subscribable(session, topic_key)
    if topic is None:
        return visit.message(t("bad.title"), t("bad.invalid"), status=404)
    path = request.url.path
    email = checked_email(form)
    verdict = gate(service, request, path, form, email)
    if verdict is Refused.FORGED:
        return visit.message(t("bad.title"), t("bad.invalid"), status=403)
    if verdict is Refused.EXPIRED:
        return _subscribe_form(visit, service, topic, path)
    if email is None:
        return _subscribe_form(
            visit, service, topic, path, status=422, errors=[t("request.bad_email")]
        )
    if verdict is Refused.SLOW:
        return visit.message(t("subscribe.title", topic=topic.name), t("slow_down"), status=429)
    name = (form.get("name") or [""])[0].strip()[:255] or None
    background.add_task(
        _request_opt_in,
        runtime,
        service,
        topic_key=topic.key,
        email=email,
        name=name,
        lang=visit.words.lang,
        actor=visit.actor,
    )
    return visit.message(t("subscribe.title", topic=topic.name), t("subscribe.sent"))


def _request_opt_in(
    runtime: Runtime,
    service: SelfService,
    *,
    topic_key: str,
    email: str,
    name: str | None,
    lang: str,
    actor: Actor,
) -> None:
    settings = runtime.settings
    with runtime.sessions() as session:
        topic = _subscribable(session, topic_key)
        if topic is None:
            return
        asked = optin.request(
            session,
            topic,
            email=email,
            name=name,
            locale=lang,
            actor=actor.via(optin.REQUEST_SOURCE),
        )
        if not asked.send:
            session.commit()
            return
        token = service.links.sign(
            Purpose.CONFIRM, asked.contact.id, topic.key, link_key=asked.contact.link_key
        )
        url = f"{settings.public_url.rstrip('/')}/subscribe/confirm/{token}"
        words = Words(language(asked.contact.locale, None) if asked.contact.locale else lang)
        notification_id = mail.confirmation(
            session,
            asked.contact,
            topic,
            url,
            words,
            processes=runtime.render_processes,
            company=settings.company_name,
        )
        session.commit()
    runtime.enqueuer.try_fan_out(notification_id)


@router.get("/subscribe/confirm/{token}", response_class=HTMLResponse)
def confirm_page(
    token: str, request: Request, runtime: RuntimeDep, service: ServiceDep
) -> Response:
    """Asks for the click; never confirms on GET (a scanner is not a person)."""
    with runtime.reads() as session:
        link = follow(service, session, Purpose.CONFIRM, token, visitor=(request, runtime))
        if not isinstance(link, Link):
            return link
        topic, visit = link.topic, link.visit
        current = subscriptions.find(session, link.contact, topic) if topic else None
        pending = current is not None and current.status is SubscriptionStatus.PENDING
    t = visit.words
    if topic is None or not pending:
        return visit.message(t("confirm.title"), t("confirm.gone"))
    return visit.message(
        t("confirm.title"),
        t("confirm.ask", topic=topic.name),
        button=t("confirm.button"),
        action=request.url.path,
        csrf=service.guard.token(request.url.path),
    )


@router.post("/subscribe/confirm/{token}", response_class=HTMLResponse)
async def confirm(
    token: str, request: Request, runtime: RuntimeDep, service: ServiceDep
) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_confirm, token, request, runtime, service, form)


def _confirm(
    token: str,
    request: Request,
    runtime: Runtime,
    service: SelfService,
    form: Mapping[str, Sequence[str]],
) -> Response:
    with runtime.sessions() as session:
        link = follow(service, session, Purpose.CONFIRM, token, visitor=(request, runtime))
        if not isinstance(link, Link):
            return link
        contact, topic, visit, t = link.contact, link.topic, link.visit, link.visit.words
        try:
            check_form(service, request, request.url.path, form)
        except (FormForged, FormExpired):
            return visit.message(t("bad.title"), t("bad.invalid"), status=403)
        issued = link.issued_at or dt.datetime.now(dt.UTC)
        actor = visit.actor.via(optin.CONFIRM_SOURCE)
        done = topic is not None and optin.confirm(session, contact, topic, actor, issued_at=issued)
        session.commit()
    if not done or topic is None:
        return visit.message(t("confirm.title"), t("confirm.gone"))
    return visit.message(
        t("confirm.title"),
        t("confirm.done", topic=topic.name),
        manage_url=manage_url(service, contact),
    )
