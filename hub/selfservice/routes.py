"""The self-service pages: `/preferences/{token}`, `/unsubscribe/{token}`, `/preferences`
(send me my link), `/subscribe/{topic}` and `/subscribe/confirm/{token}`.

GET and HEAD never change anything: mail filters fetch every link in a message. Changes are
POSTs, protected by a signed form token (no cookies needed), except the one-click unsubscribe
of RFC 8058, which mail clients POST with nothing but `List-Unsubscribe=One-Click`.
Answers never say whether an address or a contact exists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hub.db.models import Contact, Topic
from hub.domain import ActorKind, Channel, SubscriptionStatus
from hub.fields import normalize_email
from hub.preferences.tokens import ExpiredToken, InvalidToken, LinkSigner, Purpose
from hub.runtime import Runtime
from hub.schemas.subscriptions import PreferencesPatch
from hub.selfservice import choices
from hub.selfservice.pages import page
from hub.selfservice.words import Words, language
from hub.services import account_mail as mail
from hub.services import contact_preferences, optin, subscriptions
from hub.services.actor import SELF_SERVICE_SOURCE, Actor
from hub.web.deps import RuntimeDep
from hub.web.forms import FormExpired, FormForged, FormGuard, read_form
from hub.web.throttle import Throttle

router = APIRouter(include_in_schema=False)


@dataclass
class SelfService:
    """What the pages share in one process: the link signer, the form guard, the limits."""

    links: LinkSigner
    guard: FormGuard
    per_ip: Throttle
    per_address: Throttle

    @classmethod
    def build(cls, runtime: Runtime) -> SelfService:
        settings = runtime.settings
        return cls(
            links=LinkSigner(
                settings.link_secrets(), max_age=dt.timedelta(days=settings.link_ttl_days)
            ),
            guard=FormGuard(settings.link_secrets(), settings.public_url),
            per_ip=Throttle(10, 600),  # ten link or subscribe requests per IP per 10 minutes
            per_address=Throttle(3, 3600),  # three mails to one address per hour
        )


def get_self_service(request: Request) -> SelfService:
    service: SelfService = request.app.state.self_service
    return service


ServiceDep = Annotated[SelfService, Depends(get_self_service)]


class Visit:
    """One request: its language, its words, and who is acting (for the timeline)."""

    def __init__(self, request: Request, runtime: Runtime, contact: Contact | None = None) -> None:
        """`contact`: the person a link named; their language first, and the page is personal."""
        settings = runtime.settings
        locale = contact.locale if contact else None
        self.personal = contact is not None
        self.request = request
        self.runtime = runtime
        lang = language(locale, request.headers.get("accept-language"))
        self.words = Words(lang, company=settings.company_name, days=settings.link_ttl_days)
        self.actor = Actor(
            kind=ActorKind.SELF_SERVICE,
            name="self-service",
            source=SELF_SERVICE_SOURCE,
            ip=request.client.host if request.client else None,
            user_agent=request.headers.get("user-agent"),
        )

    def page(self, template: str, title: str, *, status: int = 200, **context: Any) -> Response:
        context.setdefault("notice", None)
        context.setdefault("errors", [])
        context.setdefault("changes", [])
        return page(
            template,
            self.words,
            status=status,
            title=title,
            company=self.runtime.settings.company_name,
            footer=self.words("footer") if self.personal else None,
            **context,
        )

    def message(self, title: str, *lines: str, status: int = 200, **context: Any) -> Response:
        defaults: dict[str, Any] = {
            "button": None,
            "manage_url": None,
            "offer_link": None,
            "hidden": [],
            "links": [],
        }
        return self.page("message.html", title, status=status, lines=lines, **(defaults | context))


def _bad_link(visit: Visit, service: SelfService, expired: bool) -> Response:
    """The friendly page for a link that is tampered, swapped, expired or of someone erased."""
    t = visit.words
    return visit.message(
        t("bad.title"),
        t("bad.expired" if expired else "bad.invalid"),
        status=410 if expired else 400,
        offer_link=service.guard.token("/preferences"),
    )


@dataclass(frozen=True)
class Link:
    """A personal link followed: whose it is, what topic it names, when it was issued, and
    the visit (in the person's language) it opened."""

    contact: Contact
    topic: Topic | None
    issued_at: dt.datetime | None
    visit: Visit


def _follow(
    service: SelfService,
    session: Session,
    purpose: Purpose,
    token: str,
    *,
    visitor: tuple[Request, Runtime],
) -> Link | Response:
    """The link, or the friendly page for one tampered, swapped, expired or of someone erased
    since; no answer tells which of the last two it was."""
    request, runtime = visitor
    try:
        claims = service.links.verify(purpose, token)
    except InvalidToken as exc:  # ExpiredToken is one
        expired = isinstance(exc, ExpiredToken)
        return _bad_link(Visit(request, runtime), service, expired=expired)
    contact = session.get(Contact, claims.contact_id)
    if contact is None or not claims.names(contact.link_key, contact.created_at):
        return _bad_link(Visit(request, runtime), service, expired=False)
    topic = _topic(session, claims.topic)
    return Link(contact, topic, claims.issued_at, Visit(request, runtime, contact))


def _required(link: Link, service: SelfService) -> Response:
    """A required topic cannot be unsubscribed: say so, and offer the preferences page."""
    t = link.visit.words
    assert link.topic is not None
    return link.visit.message(
        t("unsub.title"),
        t("unsub.required", topic=link.topic.name),
        manage_url=_manage_url(service, link.contact),
    )


# -- the preferences page ------------------------------------------------------------------


@router.get("/preferences/{token}", response_class=HTMLResponse)
def preferences_page(
    token: str, request: Request, runtime: RuntimeDep, service: ServiceDep
) -> Response:
    with runtime.reads() as session:
        link = _follow(service, session, Purpose.PREFERENCES, token, visitor=(request, runtime))
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
        link = _follow(service, session, Purpose.PREFERENCES, token, visitor=(request, runtime))
        if not isinstance(link, Link):
            return link
        contact, visit = link.contact, link.visit
        t = visit.words
        try:
            _check_form(service, request, path, form)
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
        return _preferences(visit, service, model, path, notice=notice, changes=outcome.changes)


def _check_form(
    service: SelfService, request: Request, path: str, form: Mapping[str, Sequence[str]]
) -> None:
    given = form.get("csrf") or [""]
    service.guard.check(path, given[0], request.headers.get("origin"), request.headers.get("host"))


# -- one-click unsubscribe (RFC 8058) ------------------------------------------------------


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(
    token: str, request: Request, runtime: RuntimeDep, service: ServiceDep
) -> Response:
    """Asks; never acts (link scanners GET every URL in a message)."""
    with runtime.reads() as session:
        link = _follow(service, session, Purpose.UNSUBSCRIBE, token, visitor=(request, runtime))
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
        hidden=[("List-Unsubscribe", "One-Click")],
        manage_url=_manage_url(service, link.contact),
    )


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe(
    token: str, request: Request, runtime: RuntimeDep, service: ServiceDep
) -> Response:
    """RFC 8058 one-click: works without cookies, JavaScript or a form token; takes effect in
    this request, so the next send already sees it."""
    form = await read_form(request)
    one_click = form.get("List-Unsubscribe") == ["One-Click"]
    return await run_in_threadpool(
        _unsubscribe, token, request, runtime, service, one_click=one_click
    )


def _unsubscribe(
    token: str, request: Request, runtime: Runtime, service: SelfService, *, one_click: bool
) -> Response:
    with runtime.sessions() as session:
        link = _follow(service, session, Purpose.UNSUBSCRIBE, token, visitor=(request, runtime))
        if not isinstance(link, Link):
            return link
        contact, topic, visit, t = link.contact, link.topic, link.visit, link.visit.words
        actor = visit.actor.via("self-service.one-click" if one_click else "self-service")
        if topic is not None and topic.required:
            return _required(link, service)
        if topic is None:
            patch = PreferencesPatch(unsubscribed_all=True)
            contact_preferences.patch(session, contact, patch, actor)
            done = t("unsub.all_done")
        else:
            current = subscriptions.find(session, contact, topic)
            if current is not None and current.status is not SubscriptionStatus.UNSUBSCRIBED:
                subscriptions.unsubscribe(session, contact, topic, actor)
            done = t("unsub.done", topic=topic.name)
        session.commit()
        return visit.message(t("unsub.title"), done, manage_url=_manage_url(service, contact))


def _topic(session: Session, key: str | None) -> Topic | None:
    return session.scalar(select(Topic).where(Topic.key == key)) if key else None


def _manage_url(service: SelfService, contact: Contact) -> str:
    token = service.links.sign(Purpose.PREFERENCES, contact.id, link_key=contact.link_key)
    return f"/preferences/{token}"


# -- send me my link -----------------------------------------------------------------------


@router.get("/preferences", response_class=HTMLResponse)
def request_link_page(request: Request, runtime: RuntimeDep, service: ServiceDep) -> Response:
    visit = Visit(request, runtime)
    return _ask_email(visit, service, "/preferences", visit.words("request.title"))


def _ask_email(
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


@router.post("/preferences", response_class=HTMLResponse)
async def request_link(
    request: Request, runtime: RuntimeDep, service: ServiceDep, background: BackgroundTasks
) -> Response:
    """Always the same answer, sent before any look-up (in the background), so neither the
    text nor the time tells whether the address is known."""
    form = await read_form(request)
    visit = Visit(request, runtime)
    t = visit.words
    email = _checked_email(form)
    gate = _gate(service, request, "/preferences", form, email)
    if gate == "forged":
        return visit.message(t("bad.title"), t("bad.invalid"), status=403)
    if gate == "expired":
        return _ask_email(visit, service, "/preferences", t("request.title"))
    if email is None:
        return _ask_email(
            visit,
            service,
            "/preferences",
            t("request.title"),
            status=422,
            errors=[t("request.bad_email")],
        )
    if gate == "slow":
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
        url = f"{settings.public_url.rstrip('/')}{_manage_url(service, contact)}"
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


def _checked_email(form: Mapping[str, Sequence[str]]) -> str | None:
    given = (form.get("email") or [""])[0].strip()[:320]
    try:
        return normalize_email(given) if given else None
    except ValueError:
        return None


def _gate(
    service: SelfService,
    request: Request,
    path: str,
    form: Mapping[str, Sequence[str]],
    email: str | None,
) -> str | None:
    """ "forged", "expired" or "slow" for a request not to act on; None to go ahead."""
    try:
        _check_form(service, request, path, form)
    except FormForged:
        return "forged"
    except FormExpired:
        return "expired"
    ip = request.client.host if request.client else "?"
    if not service.per_ip.allow(f"{path}|{ip}"):
        return "slow"
    if email is not None and not service.per_address.allow(f"{path}|{email.lower()}"):
        return "slow"
    return None


# -- double opt-in -------------------------------------------------------------------------


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
    return _ask_email(
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
    email = _checked_email(form)
    gate = _gate(service, request, path, form, email)
    if gate == "forged":
        return visit.message(t("bad.title"), t("bad.invalid"), status=403)
    if gate == "expired":
        return _subscribe_form(visit, service, topic, path)
    if email is None:
        return _subscribe_form(
            visit, service, topic, path, status=422, errors=[t("request.bad_email")]
        )
    if gate == "slow":
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
        link = _follow(service, session, Purpose.CONFIRM, token, visitor=(request, runtime))
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
        link = _follow(service, session, Purpose.CONFIRM, token, visitor=(request, runtime))
        if not isinstance(link, Link):
            return link
        contact, topic, visit, t = link.contact, link.topic, link.visit, link.visit.words
        try:
            _check_form(service, request, request.url.path, form)
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
        manage_url=_manage_url(service, contact),
    )
