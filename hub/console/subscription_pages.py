"""Console pages that change what a person hears: one topic's subscription (subscribed or not,
channels in order, frequency), and their contact-wide preferences (channels never to use, quiet
hours, unsubscribed from everything). Saved through the services behind the API's
`PUT .../subscriptions/{topic}` and `PATCH .../preferences`, so the same rules hold and each
change is on the person's timeline with the staff member as its actor."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.console import forms
from hub.console.audience_forms import (
    CHANNEL_NAMES,
    ORDINALS,
    Problem,
    Refused,
    problems_of,
    rank_ids,
    ranked_channels,
    staff_actor,
)
from hub.console.auth import NotAllowed, SessionsDep, Staff, StaffDep
from hub.console.contact_pages import missing
from hub.console.pages import back_to, page
from hub.db.models import Contact, ContactPreferences, Topic
from hub.domain import ADDRESS_FIELD, Channel, Frequency, StaffRole, SubscriptionStatus
from hub.fields import TOPIC_KEY, normalize_external_id
from hub.schemas.subscriptions import PreferencesPatch, SubscriptionIn
from hub.services import contact_preferences, contacts, subscriptions
from hub.services.errors import HubError
from hub.web.deps import RuntimeDep
from hub.web.forms import first

router = APIRouter(prefix="/console", include_in_schema=False)
FREQUENCIES = {
    Frequency.IMMEDIATE: "As each message is sent",
    Frequency.DAILY: "In a daily digest",
    Frequency.WEEKLY: "In a weekly digest",
}
LABELS = {
    "status": "Subscribed",
    "channels": "Channels",
    "frequency": "How often",
    "topic": "Topic",
    "blocked_channels": "Never use",
    "quiet_hours": "Quiet hours",
    "quiet_start": "Quiet hours start",
    "quiet_end": "Quiet hours end",
    "unsubscribed_all": "Unsubscribed from everything",
}


def _contact(session: Session, external_id: str) -> Contact | None:
    wanted = normalize_external_id(external_id)
    return session.scalar(select(Contact).where(Contact.external_id == wanted))


def _profile(contact: Contact, done: str) -> str:
    return f"/console/contacts/{quote(contact.external_id, safe='')}?done={done}"


def _marketer(staff: Staff) -> None:
    if not staff.may(StaffRole.MARKETER):
        raise NotAllowed(StaffRole.MARKETER)


@router.get("/contacts/{external_id}/subscriptions")
def choose_topic(
    external_id: str,
    staff: StaffDep,
    topic: str = Query("", pattern=f"^$|{TOPIC_KEY}"),
) -> Response:
    """The profile's "subscribe them to" form (a GET, so it works without JavaScript)."""
    _marketer(staff)
    target = f"/console/contacts/{quote(external_id, safe='')}"
    return back_to(f"{target}/subscriptions/{topic}" if topic else target)


@router.get("/contacts/{external_id}/subscriptions/{topic}")
def subscription_form(
    external_id: str, topic: str, request: Request, staff: StaffDep, runtime: RuntimeDep
) -> Response:
    _marketer(staff)
    with runtime.reads() as session:
        found = _contact(session, external_id)
        chosen = session.scalar(select(Topic).where(Topic.key == topic))
        if found is None or chosen is None:
            return missing(request, staff, external_id if found is None else f"{topic} (topic)")
        current = subscriptions.find(session, found, chosen)
        shown = subscriptions.view(chosen, current) if current or chosen.required else None
    values: dict[str, Any] = {
        "status": (shown.status if shown else SubscriptionStatus.SUBSCRIBED).value,
        "frequency": (shown.frequency if shown else Frequency.IMMEDIATE).value,
        "ranks": _ranks(
            [c.value for c in shown.channels]
            if shown
            else [c for c in chosen.default_channels if getattr(found, ADDRESS_FIELD[Channel(c)])]
        ),
    }
    return _subscription_page(request, staff, found, chosen, values, exists=current is not None)


@router.post("/contacts/{external_id}/subscriptions/{topic}")
async def subscription_save(
    external_id: str,
    topic: str,
    request: Request,
    *,
    staff: StaffDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.MARKETER)
    with runtime.reads() as session:
        found = _contact(session, external_id)
        chosen = session.scalar(select(Topic).where(Topic.key == topic))
    if found is None or chosen is None:
        return missing(request, staff, external_id if found is None else f"{topic} (topic)")
    offered = [Channel(c) for c in chosen.allowed_channels]
    status = first(form, "status") or SubscriptionStatus.SUBSCRIBED.value
    values: dict[str, Any] = {
        "status": status,
        "frequency": first(form, "frequency"),
        "ranks": {c.value: first(form, f"rank-{c.value}") for c in offered},
    }
    ordered: list[Channel] = []
    try:
        ordered = ranked_channels(form, offered)
        actor = staff_actor(request, staff)
        with runtime.sessions() as session:
            contact = contacts.get(session, found.external_id, lock=True)
            current = session.get(Topic, chosen.id)
            assert current is not None
            unsubscribing = status == SubscriptionStatus.UNSUBSCRIBED.value
            if unsubscribing and subscriptions.find(session, contact, current) is not None:
                subscriptions.unsubscribe(session, contact, current, actor)
            else:
                body = SubscriptionIn.model_validate(
                    {
                        "status": status,
                        "channels": [c.value for c in ordered] if not unsubscribing else [],
                        "frequency": first(form, "frequency") or None,
                    }
                )
                subscriptions.put(
                    session,
                    contact,
                    current,
                    body,
                    actor,
                    cool_down=dt.timedelta(days=runtime.settings.cool_down_days),
                )
            session.commit()
    except (ValidationError, HubError, Refused) as exc:
        problems = problems_of(exc, labels=LABELS, ids=rank_ids(ordered or offered))
        return _subscription_page(
            request, staff, found, chosen, values, exists=True, problems=problems
        )
    return back_to(_profile(found, "subscription"))


def _ranks(channels: list[str]) -> dict[str, int]:
    return {channel: place for place, channel in enumerate(channels, start=1)}


def _subscription_page(
    request: Request,
    staff: Staff,
    contact: Contact,
    topic: Topic,
    values: dict[str, Any],
    *,
    exists: bool,
    problems: list[Problem] | None = None,
) -> Response:
    offered = [Channel(c) for c in topic.allowed_channels]
    hints = {}
    for channel in offered:
        address = getattr(contact, ADDRESS_FIELD[channel])
        hints[channel] = f"To {address}" if address else "They have no address for this yet"
    ranks = {k: int(v) for k, v in values["ranks"].items() if str(v).isdigit()}
    return page(
        request,
        "subscription_form.html",
        f"{topic.name}: {contact.name or contact.external_id}",
        staff,
        status=422 if problems else 200,
        section="contacts",
        c=contact,
        topic=topic,
        values=values,
        ranks=ranks,
        channels=offered,
        hints=hints,
        names=CHANNEL_NAMES,
        ordinals=ORDINALS[: len(offered)],
        frequencies=[(Frequency(f), FREQUENCIES[Frequency(f)]) for f in topic.allowed_frequencies],
        exists=exists,
        problems=problems or [],
    )


@router.get("/contacts/{external_id}/preferences")
def preferences_form(
    external_id: str, request: Request, staff: StaffDep, runtime: RuntimeDep
) -> Response:
    _marketer(staff)
    with runtime.reads() as session:
        found = _contact(session, external_id)
        if found is None:
            return missing(request, staff, external_id)
        now = contact_preferences.view(session.get(ContactPreferences, found.id))
    quiet = now.quiet_hours
    values = {
        "blocked": [c.value for c in now.blocked_channels],
        "quiet_start": quiet.start.strftime("%H:%M") if quiet else "",
        "quiet_end": quiet.end.strftime("%H:%M") if quiet else "",
        "unsubscribed_all": now.unsubscribed_all,
    }
    return _preferences_page(request, staff, found, values)


@router.post("/contacts/{external_id}/preferences")
async def preferences_save(
    external_id: str,
    request: Request,
    staff: StaffDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.MARKETER)
    values: dict[str, Any] = {
        "blocked": form.get("blocked", []),
        "quiet_start": first(form, "quiet_start").strip(),
        "quiet_end": first(form, "quiet_end").strip(),
        "unsubscribed_all": first(form, "unsubscribed_all") == "yes",
    }
    with runtime.reads() as session:
        found = _contact(session, external_id)
    if found is None:
        return missing(request, staff, external_id)
    try:
        body = PreferencesPatch.model_validate(
            {
                "blocked_channels": values["blocked"],
                "quiet_hours": _quiet_hours(values["quiet_start"], values["quiet_end"]),
                "unsubscribed_all": values["unsubscribed_all"],
            }
        )
        with runtime.sessions() as session:
            contact = contacts.get(session, found.external_id, lock=True)
            contact_preferences.patch(session, contact, body, staff_actor(request, staff))
            session.commit()
    except (ValidationError, HubError, Refused) as exc:
        ids = {
            "blocked_channels": "blocked-email",
            "quiet_hours": "quiet_start",
            "quiet_hours.end": "quiet_end",
        }
        problems = problems_of(exc, labels=LABELS, ids=ids)
        return _preferences_page(request, staff, found, values, problems=problems)
    return back_to(_profile(found, "preferences"))


def _quiet_hours(start: str, end: str) -> dict[str, str] | None:
    if not start and not end:
        return None
    missing = [
        Problem(field, f"{LABELS[field]}: enter a time such as 22:00, or leave both empty")
        for field, value in (("quiet_start", start), ("quiet_end", end))
        if not value
    ]
    if missing:
        raise Refused(missing)
    return {"start": start, "end": end}


def _preferences_page(
    request: Request,
    staff: Staff,
    contact: Contact,
    values: dict[str, Any],
    *,
    problems: list[Problem] | None = None,
) -> Response:
    return page(
        request,
        "preferences_form.html",
        f"Preferences of {contact.name or contact.external_id}",
        staff,
        status=422 if problems else 200,
        section="contacts",
        c=contact,
        values=values,
        channels=list(Channel),
        names=CHANNEL_NAMES,
        problems=problems or [],
    )
