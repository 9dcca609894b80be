"""What every self-service flow shares: the service, a visit, following a signed link, the
bad-link page, the manage URL and checking a page's signed form token."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from hub.db.models import Contact, Topic
from hub.domain import ActorKind
from hub.preferences.tokens import LinkSigner, Purpose
from hub.runtime import Runtime
from hub.selfservice.pages import page
from hub.selfservice.words import Words, language
from hub.services import unsubscribes
from hub.services.actor import SELF_SERVICE_SOURCE, Actor
from hub.services.unsubscribes import BadLink
from hub.web.forms import FormGuard
from hub.web.throttle import Throttle


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
            links=unsubscribes.signer(settings),
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
        context.setdefault("why", None)  # "would you tell us why?", after an unsubscribe
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


def bad_link(visit: Visit, service: SelfService, expired: bool) -> Response:
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


def follow(
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
    found = unsubscribes.target(session, service.links, purpose, token)
    if isinstance(found, BadLink):
        return bad_link(Visit(request, runtime), service, expired=found is BadLink.EXPIRED)
    visit = Visit(request, runtime, found.contact)
    return Link(found.contact, found.topic, found.issued_at, visit)


def manage_url(service: SelfService, contact: Contact) -> str:
    """The path of the person's preferences page, freshly signed."""
    token = service.links.sign(Purpose.PREFERENCES, contact.id, link_key=contact.link_key)
    return f"/preferences/{token}"


def check_form(
    service: SelfService, request: Request, path: str, form: Mapping[str, Sequence[str]]
) -> None:
    """Raises FormForged or FormExpired unless the form carries a good token for `path`."""
    given = form.get("csrf") or [""]
    service.guard.check(path, given[0], request.headers.get("origin"), request.headers.get("host"))
