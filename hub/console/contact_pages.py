"""Console pages for contacts: the list (newest first, paged, searchable), a person's profile
with their timeline in plain words (`hub.services.timeline_words`), and the forms that add a
person and change their details, checked by the API's own schema and saved through the same
service, so each change is on their timeline with the staff member."""

from __future__ import annotations

import functools
import zoneinfo
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from hub.console import forms
from hub.console.audience_forms import (
    ATTRIBUTE_TYPES,
    AttributeRow,
    Problem,
    Refused,
    attribute_rows,
    attributes_from,
    posted_rows,
    problems_of,
    staff_actor,
)
from hub.console.auth import NotAllowed, SessionsDep, Staff, StaffDep
from hub.console.pages import back_to, page
from hub.db.base import utcnow
from hub.db.models import Contact, ContactPreferences, Suppression, Topic
from hub.dispatch import explain
from hub.domain import ContactKind, StaffRole
from hub.fields import ExternalId, normalize_external_id
from hub.schemas.contacts import CONTACT_FIELDS, ContactIn
from hub.services import contact_preferences, contacts, subscriptions, timeline_entries, topics
from hub.services.errors import HubError
from hub.services.timeline_words import Ref, RefKind
from hub.web.deps import RuntimeDep
from hub.web.forms import first

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE = 50
TIMELINE_PAGE = 100
BLANK_ROWS = 2  # empty attribute rows under a contact's own, to add more
DONE = {
    "created": "The person was added.",
    "saved": "Their details were saved.",
    "subscription": "Their subscription was saved.",
    "preferences": "Their preferences were saved.",
}
LABELS = {
    "external_id": "External id",
    "kind": "Kind",
    "name": "Name",
    "email": "E-mail address",
    "phone": "Phone number",
    "webhook_url": "Webhook URL",
    "locale": "Language",
    "timezone": "Time zone",
    "attributes": "Attributes",
}
_TEXT_FIELDS = ("name", "email", "phone", "webhook_url", "locale")
_EXTERNAL_ID: TypeAdapter[str] = TypeAdapter(ExternalId)
# Where an id named on the timeline leads (topics have no page but their editor, which a
# viewer reads without changing).
LINKS = {
    RefKind.NOTIFICATION: "/console/notifications/{}",
    RefKind.CAMPAIGN: "/console/campaigns/{}",
    RefKind.TOPIC: "/console/topics/{}/edit",
    RefKind.TEMPLATE: "/console/templates/history?key={}",
}
BeforeQuery = Annotated[int | None, Query(ge=1, le=2**63 - 1)]


@functools.cache
def time_zones() -> list[str]:
    """The IANA zones the time zone field suggests (any the API accepts may be typed)."""
    return sorted(zoneinfo.available_timezones())


@router.get("/contacts")
def contact_list(
    request: Request,
    staff: StaffDep,
    runtime: RuntimeDep,
    q: Annotated[str, Query(max_length=320)] = "",
    before: BeforeQuery = None,
) -> Response:
    """The newest people first, a page at a time; a search narrows them."""
    needle = q.strip()
    query = select(Contact)
    if needle:
        query = query.where(
            or_(
                Contact.external_id == normalize_external_id(needle),
                func.lower(Contact.email) == needle.lower(),
                Contact.phone == needle,
                Contact.name.ilike(f"%{needle}%"),
            )
        )
    if before is not None:
        query = query.where(Contact.id < before)
    with runtime.reads() as session:
        rows = list(session.scalars(query.order_by(Contact.id.desc()).limit(PAGE + 1)))
    older = rows[PAGE - 1].id if len(rows) > PAGE else None
    return page(
        request,
        "contacts.html",
        "Contacts",
        staff,
        section="contacts",
        q=q,
        rows=rows[:PAGE],
        older=older,
        paged=before is not None,
    )


def missing(request: Request, staff: Staff, external_id: str) -> Response:
    return page(
        request,
        "contact_missing.html",
        "No such contact",
        staff,
        status=404,
        section="contacts",
        external_id=external_id,
    )


@router.get("/contacts/new")
def contact_new(request: Request, staff: StaffDep) -> Response:
    if not staff.may(StaffRole.MARKETER):
        raise NotAllowed(StaffRole.MARKETER)
    return _form(
        request,
        staff,
        None,
        values={"timezone": "UTC", "kind": "client"},
        rows=attribute_rows({}, blank=BLANK_ROWS),
    )


@router.post("/contacts/new")
async def contact_create(
    request: Request, staff: StaffDep, sessions: SessionsDep, runtime: RuntimeDep
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.MARKETER)
    values = _values(form, ("external_id", *CONTACT_FIELDS))
    rows = posted_rows(form)
    if first(form, "action") == "more":
        return _form(request, staff, None, values=values, rows=_more(rows))
    try:
        external_id, body = _checked(values, rows, removed=(), creating=True)
        with runtime.sessions() as session:
            if session.scalar(select(Contact.id).where(Contact.external_id == external_id)):
                raise Refused(
                    [
                        Problem(
                            "external_id",
                            f"External id: {external_id} is taken; "
                            "open that person from the list to change them",
                        )
                    ]
                )
            contacts.put(
                session,
                external_id,
                body.model_dump(),
                staff_actor(request, staff),
                allow_private_webhooks=runtime.settings.webhook_allow_private,
            )
            session.commit()
    except (ValidationError, HubError, Refused) as exc:
        return _form(request, staff, None, values=values, rows=rows, problems=_problems(exc))
    return back_to(f"/console/contacts/{_quoted(external_id)}?done=created")


@router.get("/contacts/{external_id}/edit")
def contact_edit(
    external_id: str, request: Request, staff: StaffDep, runtime: RuntimeDep
) -> Response:
    if not staff.may(StaffRole.MARKETER):
        raise NotAllowed(StaffRole.MARKETER)
    with runtime.reads() as session:
        found = _find(session, external_id)
    if found is None:
        return missing(request, staff, external_id)
    values = {name: getattr(found, name) or "" for name in CONTACT_FIELDS}
    values["kind"] = found.kind.value
    return _form(
        request,
        staff,
        found,
        values=values,
        rows=attribute_rows(found.attributes, blank=BLANK_ROWS),
    )


@router.post("/contacts/{external_id}/edit")
async def contact_save(
    external_id: str,
    request: Request,
    staff: StaffDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.MARKETER)
    values = _values(form, CONTACT_FIELDS)
    rows = posted_rows(form)
    with runtime.reads() as session:
        found = _find(session, external_id)
    if found is None:
        return missing(request, staff, external_id)
    if first(form, "action") == "more":
        return _form(request, staff, found, values=values, rows=_more(rows))
    try:
        removed = set(found.attributes) - {row.key.strip() for row in rows}
        _, body = _checked(values, rows, removed=removed, creating=False)
        with runtime.sessions() as session:
            contacts.patch(
                session,
                found.external_id,
                body.given(),
                staff_actor(request, staff),
                allow_private_webhooks=runtime.settings.webhook_allow_private,
            )
            session.commit()
    except (ValidationError, HubError, Refused) as exc:
        return _form(request, staff, found, values=values, rows=rows, problems=_problems(exc))
    return back_to(f"/console/contacts/{_quoted(found.external_id)}?done=saved")


def _form(
    request: Request,
    staff: Staff,
    found: Contact | None,
    *,
    values: dict[str, Any],
    rows: list[AttributeRow],
    problems: list[Problem] | None = None,
) -> Response:
    title = "Add a person" if found is None else f"Change {found.name or found.external_id}"
    return page(
        request,
        "contact_form.html",
        title,
        staff,
        status=422 if problems else 200,
        section="contacts",
        c=found,
        values=values,
        rows=rows,
        kinds=[k.value for k in ContactKind],
        types=ATTRIBUTE_TYPES,
        zones=time_zones(),
        problems=problems or [],
    )


def _values(form: dict[str, list[str]], names: tuple[str, ...]) -> dict[str, str]:
    return {name: first(form, name).strip() for name in names}


def _more(rows: list[AttributeRow]) -> list[AttributeRow]:
    return [*rows, AttributeRow("", "", "text")]


def _external_id(value: str) -> str:
    if not value:
        raise Refused(
            [
                Problem(
                    "external_id",
                    "External id: enter the id your own systems "
                    "know this person by, such as a customer number",
                )
            ]
        )
    try:
        return _EXTERNAL_ID.validate_python(value)
    except ValidationError as exc:
        message = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise Refused([Problem("external_id", f"External id: {message}")]) from None


def _checked(
    values: dict[str, str], rows: list[AttributeRow], *, removed: Any, creating: bool
) -> tuple[str, ContactIn]:
    """The external id (when `creating`) and the contact as the API's schema reads them.
    Raises Refused with every problem of the form at once."""
    problems: list[Problem] = []
    external_id = ""
    if creating:
        try:
            external_id = _external_id(values["external_id"])
        except Refused as exc:
            problems += exc.problems
    attributes: dict[str, Any] = {}
    in_rows: list[Problem] = []  # listed last, as the rows are last on the page
    try:
        attributes = attributes_from(rows)
    except Refused as exc:
        in_rows = exc.problems
    given = _given(values, {**dict.fromkeys(removed), **attributes}, clear=not creating)
    try:
        body = ContactIn.model_validate(given)
    except ValidationError as exc:
        problems += _problems(exc)
    problems += in_rows
    if problems:
        raise Refused(problems)
    return external_id, body


def _given(values: dict[str, str], attributes: dict[str, Any], *, clear: bool) -> dict[str, Any]:
    """The contact's fields as the API takes them. An empty text field is left out of a new
    person and, when changing one (`clear`), clears the field; removed attributes are sent as
    null, which the API's PATCH takes as "remove this key"."""
    given: dict[str, Any] = {"kind": values.get("kind") or "client"}
    for name in _TEXT_FIELDS:
        if values.get(name) or clear:
            given[name] = values.get(name) or None
    given["timezone"] = values.get("timezone") or "UTC"
    given["attributes"] = attributes
    return given


def _problems(exc: Exception) -> list[Problem]:
    return problems_of(exc, labels=LABELS)


def _quoted(external_id: str) -> str:
    return quote(external_id, safe="")


def _find(session: Session, external_id: str) -> Contact | None:
    wanted = normalize_external_id(external_id)
    return session.scalar(select(Contact).where(Contact.external_id == wanted))


@router.get("/contacts/{external_id}")
def contact(
    external_id: str,
    request: Request,
    *,
    staff: StaffDep,
    runtime: RuntimeDep,
    before: BeforeQuery = None,
    why: Annotated[str, Query(max_length=100)] = "",
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    with runtime.reads() as session:
        found = _find(session, external_id)
        if found is None:
            return missing(request, staff, external_id)
        subs = subscriptions.all_for(session, found)
        addresses = [a for a in (found.email, found.phone, found.webhook_url) if a]
        suppressed = list(
            session.scalars(select(Suppression).where(Suppression.address.in_(addresses)))
        )
        all_topics = list(session.scalars(select(Topic).order_by(Topic.key)))
        events = timeline_entries.page(
            session,
            found.id,
            before_id=before,
            limit=TIMELINE_PAGE + 1,
            topics={t.key: t.name for t in all_topics},
            zone=found.timezone,
            now=utcnow(),
        )
        chosen = {s.topic for s in subs}
        offered = [t for t in all_topics if t.key not in chosen and t.audience.includes(found.kind)]
        preferences = contact_preferences.view(session.get(ContactPreferences, found.id))
        explained = None
        if why in {t.key for t in all_topics}:
            explained = explain.for_contact(
                session,
                found,
                topics.get(session, why),
                at=utcnow(),
                hasher=runtime.hasher,
                caps=runtime.settings.default_caps(),
            )
    more = events[TIMELINE_PAGE - 1].id if len(events) > TIMELINE_PAGE else None
    return page(
        request,
        "contact.html",
        found.name or found.external_id,
        staff,
        section="contacts",
        notice=DONE.get(done),
        c=found,
        attributes=[(key, found.attributes[key]) for key in sorted(found.attributes)],
        subscriptions=subs,
        offered=offered,
        preferences=preferences,
        suppressions=suppressed,
        events=events[:TIMELINE_PAGE],
        href=href,
        more=more,
        topics=[t.key for t in all_topics],
        why=why,
        explained=explained,
    )


def href(ref: Ref) -> str:
    """The console page an id on the timeline leads to."""
    return LINKS[ref.kind].format(quote(ref.key, safe=""))
