""" "Would you tell us why?": the optional question after a person unsubscribes on the
preferences page or on the unsubscribe link's confirmation page, and recording the answer
as a `refusal.reason` event on their timeline (and so in the outbox, for event endpoints).

`POST /preferences/{token}/why` and `POST /unsubscribe/{token}/why`, each with the signed form
token of its own path (no cookies). The unsubscribe link names its topic (or everything); the
preferences page sends the topics it has just seen the person leave, and each is checked
against the timeline: a reason is kept only for an unsubscribe that is there.

One answer per unsubscribe: a second post about the same unsubscribe records nothing and says
so, so a reloaded page or a double click does not count a person twice in a campaign report.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hub.db.models import Contact, ContactEvent, Topic
from hub.domain import EventType, RefusalWhy, SubscriptionStatus
from hub.preferences.tokens import Purpose
from hub.runtime import Runtime
from hub.selfservice.links import Link, SelfService, ServiceDep, check_form, follow, manage_url
from hub.selfservice.words import Words
from hub.services import timeline
from hub.services.actor import Actor
from hub.web.deps import RuntimeDep
from hub.web.forms import FormExpired, FormForged, read_form

router = APIRouter(include_in_schema=False)

NOTE_LIMIT: Final = 500
ANSWERS: Final = tuple(RefusalWhy)
MAX_TOPICS: Final = 50  # a page never shows more; more in a post is not from our page
EVERYTHING: Final = None  # the "topic" of an unsubscribe from everything


@dataclass(frozen=True)
class Question:
    """The question as a page shows it: where it posts, what it is about, what was given."""

    action: str
    csrf: str
    skip_url: str
    topics: list[str] = field(default_factory=list)
    everything: bool = False
    reason: str = ""
    note: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    answers: tuple[RefusalWhy, ...] = ANSWERS
    limit: int = NOTE_LIMIT


def question(
    service: SelfService,
    contact: Contact,
    *,
    page_path: str,
    topics: Sequence[str] = (),
    everything: bool = False,
) -> Question:
    """The question for a page at `page_path` (its answer goes to `page_path + "/why"`)."""
    action = f"{page_path}/why"
    return Question(
        action=action,
        csrf=service.guard.token(action),
        skip_url=manage_url(service, contact),
        topics=list(topics),
        everything=everything,
    )


def clean_note(raw: str) -> str:
    """NFC, control characters gone (line breaks and tabs become spaces), ends trimmed."""
    text = unicodedata.normalize("NFC", raw)
    kept = (
        (" " if ch.isspace() else "") if unicodedata.category(ch).startswith("C") else ch
        for ch in text
    )
    return "".join(kept).strip()


@dataclass(frozen=True)
class Answer:
    reason: RefusalWhy | None
    note: str | None
    errors: dict[str, str]
    given_reason: str
    given_note: str


def read_answer(form: Mapping[str, Sequence[str]], t: Words) -> Answer:
    """The chosen reason and note, or errors by field (`reason`, `note`). A note without a
    reason is `other`."""
    given_reason = (form.get("reason") or [""])[0].strip()
    given_note = (form.get("note") or [""])[0]
    errors: dict[str, str] = {}
    reason: RefusalWhy | None = None
    if given_reason:
        try:
            reason = RefusalWhy(given_reason)
        except ValueError:
            errors["reason"] = t("why.bad_reason")
    note = clean_note(given_note)
    if len(note) > NOTE_LIMIT:
        errors["note"] = t("why.long_note", limit=NOTE_LIMIT)
    if note and reason is None and "reason" not in errors:
        reason = RefusalWhy.OTHER
    return Answer(reason, note or None, errors, given_reason, given_note[: NOTE_LIMIT * 4])


def last_unsubscribe(session: Session, contact_id: int, topic_key: str | None) -> int | None:
    """The id of the person's latest unsubscribe from the topic (None: from everything)."""
    if topic_key is None:
        left = (ContactEvent.type == EventType.PREFERENCES_CHANGED) & ContactEvent.changes[
            ("unsubscribed_all", "after")
        ].as_boolean().is_(True)
    else:
        left = (
            (ContactEvent.type == EventType.SUBSCRIPTION_CHANGED)
            & (ContactEvent.topic_key == topic_key)
            & (
                ContactEvent.changes[("status", "after")].as_string()
                == SubscriptionStatus.UNSUBSCRIBED.value
            )
        )
    found: int | None = session.scalar(
        select(func.max(ContactEvent.id)).where(ContactEvent.contact_id == contact_id, left)
    )
    return found


def answered_since(session: Session, contact_id: int, topic_key: str | None, since: int) -> bool:
    same_topic = (
        ContactEvent.topic_key.is_(None)
        if topic_key is None
        else (ContactEvent.topic_key == topic_key)
    )
    found = session.scalar(
        select(ContactEvent.id)
        .where(
            ContactEvent.contact_id == contact_id,
            ContactEvent.type == EventType.REFUSAL_REASON,
            ContactEvent.id > since,
            same_topic,
        )
        .limit(1)
    )
    return found is not None


def record(
    session: Session, contact: Contact, about: Sequence[str | None], answer: Answer, actor: Actor
) -> str:
    """Record the answer once for each unsubscribe in `about` not answered yet. Returns the
    key of what the page says: `why.thanks`, `why.already` or `why.gone`."""
    open_ones: list[str | None] = []
    answered = False
    for key in dict.fromkeys(about):  # each once, in order
        last = last_unsubscribe(session, contact.id, key)
        if last is None:
            continue
        if answered_since(session, contact.id, key, last):
            answered = True
            continue
        open_ones.append(key)
    if not open_ones:
        return "why.already" if answered else "why.gone"
    assert answer.reason is not None
    for key in open_ones:
        timeline.record(
            session,
            contact_id=contact.id,
            type=EventType.REFUSAL_REASON,
            actor=actor,
            topic_key=key,
            reason=answer.reason.value,
            changes={"topic": key, "note": answer.note},
        )
    return "why.thanks"


@router.post("/preferences/{token}/why", response_class=HTMLResponse)
async def why_from_preferences(
    token: str, request: Request, runtime: RuntimeDep, service: ServiceDep
) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(
        _answer, token, request, runtime, service, form, purpose=Purpose.PREFERENCES
    )


@router.post("/unsubscribe/{token}/why", response_class=HTMLResponse)
async def why_from_unsubscribe(
    token: str, request: Request, runtime: RuntimeDep, service: ServiceDep
) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(
        _answer, token, request, runtime, service, form, purpose=Purpose.UNSUBSCRIBE
    )


def _about(
    session: Session, link: Link, purpose: Purpose, form: Mapping[str, Sequence[str]]
) -> list[str | None]:
    """What the answer is about: the link's topic (or everything) for an unsubscribe link;
    the topics the preferences page sent, when they are the person's to leave."""
    if purpose is Purpose.UNSUBSCRIBE:
        return [link.topic.key if link.topic is not None else EVERYTHING]
    keys = [k for k in form.get("topic", [])[:MAX_TOPICS] if k]
    topics = session.scalars(select(Topic.key).where(Topic.key.in_(keys), ~Topic.required)).all()
    about: list[str | None] = [k for k in keys if k in set(topics)]
    if form.get("everything"):
        about.append(EVERYTHING)
    return about


def _answer(
    token: str,
    request: Request,
    runtime: Runtime,
    service: SelfService,
    form: Mapping[str, Sequence[str]],
    *,
    purpose: Purpose,
) -> Response:
    path = request.url.path
    page_path = path.removesuffix("/why")
    with runtime.sessions() as session:
        link = follow(service, session, purpose, token, visitor=(request, runtime))
        if not isinstance(link, Link):
            return link
        visit, t = link.visit, link.visit.words
        about = _about(session, link, purpose, form)
        asked = question(
            service,
            link.contact,
            page_path=page_path,
            topics=[k for k in about if k is not None] if purpose is Purpose.PREFERENCES else [],
            everything=EVERYTHING in about and purpose is Purpose.PREFERENCES,
        )
        try:
            check_form(service, request, path, form)
        except FormExpired:
            return visit.page(
                "why.html", t("why.legend"), why=asked, alone=True, notice=t("form_expired")
            )
        except FormForged:
            return visit.message(t("bad.title"), t("bad.invalid"), status=403)
        answer = read_answer(form, t)
        if answer.errors:
            shown = replace(
                asked, reason=answer.given_reason, note=answer.given_note, errors=answer.errors
            )
            return visit.page("why.html", t("why.legend"), status=422, why=shown, alone=True)
        manage = manage_url(service, link.contact)
        if answer.reason is None:
            return visit.message(t("why.title"), t("why.nothing"), manage_url=manage)
        said = record(session, link.contact, about, answer, visit.actor)
        session.commit()
        status = 409 if said == "why.gone" else 200
        return visit.message(t("why.title"), t(said), status=status, manage_url=manage)
