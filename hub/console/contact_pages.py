"""Console pages for contacts: the list (newest first, paged, searchable, narrowed to an
owner's clients or a team's members), a person's profile with who looks after them and their
timeline in plain words (`hub.services.timeline_words`), and the forms that add a person and
change their details, owner and teams included, checked by the API's own schema and saved
through the same service, so each change is on their timeline (and an owner's) with the staff
member."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from hub.console import contact_care_view as care_view
from hub.console import contact_form, forms
from hub.console.audience_forms import (
    ATTRIBUTE_TYPES,
    AttributeRow,
    Problem,
    Refused,
    attribute_rows,
    posted_rows,
    staff_actor,
)
from hub.console.auth import NotAllowed, SessionsDep, Staff, StaffDep
from hub.console.pages import back_to, page
from hub.db.base import utcnow
from hub.db.models import Contact, ContactPreferences, Suppression, TeamMember, Topic
from hub.dispatch import explain
from hub.domain import ContactKind, StaffRole
from hub.fields import normalize_external_id
from hub.runtime import Runtime
from hub.schemas.contacts import CONTACT_FIELDS
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
# Where an id named on the timeline leads (topics have no page but their editor, which a
# viewer reads without changing).
LINKS = {
    RefKind.NOTIFICATION: "/console/notifications/{}",
    RefKind.CAMPAIGN: "/console/campaigns/{}",
    RefKind.TOPIC: "/console/topics/{}/edit",
    RefKind.TEMPLATE: "/console/templates/history?key={}",
    RefKind.CONTACT: "/console/contacts/{}",
}
BeforeQuery = Annotated[int | None, Query(ge=1, le=2**63 - 1)]


@router.get("/contacts")
def contact_list(
    request: Request,
    *,
    staff: StaffDep,
    runtime: RuntimeDep,
    q: Annotated[str, Query(max_length=320)] = "",
    owner: Annotated[str, Query(max_length=255)] = "",
    team: Annotated[str, Query(max_length=64)] = "",
    before: BeforeQuery = None,
) -> Response:
    """The newest people first, a page at a time; a search narrows them, and so do `owner`
    (an employee's external id: their clients) and `team` (a team's key: its members), as in
    the API's list. An unknown owner or team is a 422 naming it, not an empty list."""
    needle, owner, team = q.strip(), owner.strip(), team.strip()
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
    rows: list[Contact] = []
    with runtime.reads() as session:
        narrow = care_view.narrowed(session, owner=owner, team=team)
        if narrow.owner_id is not None:
            query = query.where(Contact.owner_id == narrow.owner_id)
        if narrow.team_id is not None:
            members = select(TeamMember.contact_id).where(TeamMember.team_id == narrow.team_id)
            query = query.where(Contact.id.in_(members))
        if not narrow.problems:
            rows = list(session.scalars(query.order_by(Contact.id.desc()).limit(PAGE + 1)))
        teams = contact_form.all_teams(session)
    older = rows[PAGE - 1].id if len(rows) > PAGE else None
    kept = {name: value for name, value in (("q", q), ("owner", owner), ("team", team)) if value}
    return page(
        request,
        "contacts.html",
        "Contacts",
        staff,
        status=422 if narrow.problems else 200,
        section="contacts",
        q=q,
        owner=owner,
        team=team,
        heading=narrow.heading,
        problems=narrow.problems,
        teams=teams,
        kept=urlencode(kept),
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
        values={"timezone": "UTC", "kind": "client", "owner": "", "teams": []},
        rows=attribute_rows({}, blank=BLANK_ROWS),
    )


@router.post("/contacts/new")
async def contact_create(
    request: Request, staff: StaffDep, sessions: SessionsDep, runtime: RuntimeDep
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.MARKETER)
    values = contact_form.values(form, ("external_id", *CONTACT_FIELDS))
    rows = posted_rows(form)
    if first(form, "action") == "more":
        return _form(request, staff, None, values=values, rows=contact_form.more(rows))
    try:
        external_id, body = contact_form.checked(values, rows, removed=(), creating=True)
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
                care=body.care(),
            )
            session.commit()
    except (ValidationError, HubError, Refused) as exc:
        return _form(
            request, staff, None, values=values, rows=rows, problems=contact_form.problems(exc)
        )
    return back_to(f"/console/contacts/{_quoted(external_id)}?done=created")


@router.get("/contacts/{external_id}/edit")
def contact_edit(
    external_id: str, request: Request, staff: StaffDep, runtime: RuntimeDep
) -> Response:
    if not staff.may(StaffRole.MARKETER):
        raise NotAllowed(StaffRole.MARKETER)
    with runtime.reads() as session:
        found = _find(session, external_id)
        cared = contact_form.care_of(session, found) if found is not None else {}
    if found is None:
        return missing(request, staff, external_id)
    values: dict[str, Any] = {name: getattr(found, name) or "" for name in CONTACT_FIELDS}
    values["kind"] = found.kind.value
    values |= cared
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
    values = contact_form.values(form, CONTACT_FIELDS)
    rows = posted_rows(form)
    with runtime.reads() as session:
        found = _find(session, external_id)
    if found is None:
        return missing(request, staff, external_id)
    if first(form, "action") == "more":
        return _form(request, staff, found, values=values, rows=contact_form.more(rows))
    try:
        removed = set(found.attributes) - {row.key.strip() for row in rows}
        _, body = contact_form.checked(values, rows, removed=removed, creating=False)
        with runtime.sessions() as session:
            contacts.patch(
                session,
                found.external_id,
                body.given(),
                staff_actor(request, staff),
                allow_private_webhooks=runtime.settings.webhook_allow_private,
                care=body.care(),
            )
            session.commit()
    except (ValidationError, HubError, Refused) as exc:
        return _form(
            request, staff, found, values=values, rows=rows, problems=contact_form.problems(exc)
        )
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
    runtime: Runtime = request.app.state.runtime
    with runtime.reads() as session:
        choices = contact_form.choices(session)
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
        zones=contact_form.time_zones(),
        choices=choices,
        problems=problems or [],
    )


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
        cared = care_view.facts(session, found)
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
        care=cared,
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
