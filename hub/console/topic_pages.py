"""Console pages for topics: the list, and the editor that creates or changes one with the
API's own schema (`TopicIn`) and service, its errors shown GOV.UK-style by field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from hub.console import forms
from hub.console.auth import NotAllowed, SessionsDep, Staff, StaffDep
from hub.console.pages import back_to, page
from hub.db.models import Topic
from hub.domain import Audience, Channel, Frequency, StaffRole, TopicCategory
from hub.fields import TOPIC_KEY, check_key
from hub.schemas.topics import TopicIn
from hub.services import topics
from hub.services.errors import HubError, NotFound
from hub.web.deps import RuntimeDep
from hub.web.forms import first

router = APIRouter(prefix="/console", include_in_schema=False)
KeyPath = Annotated[str, Path(pattern=TOPIC_KEY)]

CHANNELS = (
    (Channel.EMAIL, "E-mail"),
    (Channel.SMS, "SMS"),
    (Channel.VOICE, "Voice call"),
    (Channel.WEBHOOK, "Webhook"),
)
FREQUENCIES = (
    (Frequency.IMMEDIATE, "Each message as it is sent"),
    (Frequency.DAILY, "A daily digest"),
    (Frequency.WEEKLY, "A weekly digest"),
)
OVER_CAP = (
    ("defer", "Waits until it fits under the cap"),
    ("drop", "Is not sent (refused, with the reason on the timeline)"),
)
AUDIENCES = (
    (Audience.ALL, "Everyone"),
    (Audience.CLIENTS, "Clients only"),
    (Audience.EMPLOYEES, "Employees only"),
)
# In the order the form shows them: the error summary lists problems in the same order.
ORDER = (
    "key",
    "name",
    "description",
    "category",
    "audience",
    "allowed_channels",
    "default_channels",
    "allowed_frequencies",
    "public",
    "required",
    "bypass_quiet_hours",
    "tracking",
    "track_sms",
    "cap_per_day",
    "cap_per_week",
    "cap_action",
)

# Plain words for what pydantic says in its own; a message not listed here is shown as
# the schema words it (the validators' messages are written for people already).
WORDS: dict[tuple[str, str], str] = {
    ("name", "missing"): "Enter a name",
    ("name", "string_too_short"): "Enter a name",
    ("name", "string_too_long"): "The name must be 255 characters or fewer",
    ("description", "string_too_long"): "The description must be 10,000 characters or fewer",
    ("category", "enum"): "Choose marketing or transactional",
    ("category", "value_error"): "A marketing topic cannot be required, as people may always "
    "refuse marketing: choose Transactional, or untick Required",
    ("audience", "enum"): "Choose who the topic is for",
    ("allowed_channels", "too_short"): "Choose at least one channel people may be reached on",
    ("allowed_channels", "enum"): "Choose channels from the list",
    ("default_channels", "enum"): "Choose channels from the list",
    ("allowed_frequencies", "too_short"): "Choose at least one frequency people may pick",
    ("allowed_frequencies", "enum"): "Choose frequencies from the list",
    ("cap_action", "literal_error"): "Choose what happens to a message over a cap",
}
CAP_RANGE = {"cap_per_day": ("day", "1 to 1,000"), "cap_per_week": ("week", "1 to 10,000")}


@router.get("/topics")
def topic_list(
    request: Request,
    staff: StaffDep,
    runtime: RuntimeDep,
) -> Response:
    with runtime.reads() as session:
        rows = topics.every(session)
    return page(request, "topics.html", "Topics", staff, section="topics", rows=rows)


@router.get("/topics/new")
def topic_new(request: Request, staff: StaffDep) -> Response:
    if not staff.may(StaffRole.MARKETER):
        raise NotAllowed(StaffRole.MARKETER)
    return _editor(request, staff, None, shown=_blank())


@router.post("/topics/new")
async def topic_create(
    request: Request, staff: StaffDep, sessions: SessionsDep, runtime: RuntimeDep
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.MARKETER)
    key = first(form, "key").strip()
    shown = _shown(form) | {"key": key}
    invalid: dict[str, str] = {}
    try:
        check_key(key)
    except ValueError:
        invalid["key"] = _key_problem(key)
    data = _validated(form, (), invalid)
    if data is not None and not invalid:
        try:
            with runtime.sessions() as session:
                topics.create(session, key, data, actor=forms.staff_actor(request, staff))
                session.commit()
        except HubError as exc:
            invalid["key"] = exc.message[:1].upper() + exc.message[1:]
        else:
            return back_to(f"/console/topics/{key}/edit?saved=created")
    return _editor(request, staff, None, shown=shown, invalid=invalid)


@router.get("/topics/{key}/edit")
def topic_edit(
    key: KeyPath,
    request: Request,
    staff: StaffDep,
    runtime: RuntimeDep,
    saved: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """The topic's fields: editable by marketers and admins, read-only for viewers."""
    with runtime.reads() as session:
        found = _find(session, key)
    if found is None:
        return _missing(request, staff, key)
    notice = {"created": "Topic created.", "updated": "Changes saved."}.get(saved)
    return _editor(request, staff, found, shown=_from_topic(found), notice=notice)


@router.post("/topics/{key}/edit")
async def topic_update(
    key: KeyPath,
    request: Request,
    staff: StaffDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.MARKETER)
    with runtime.reads() as session:
        found = _find(session, key)
    if found is None:
        return _missing(request, staff, key)
    invalid: dict[str, str] = {}
    data = _validated(form, _ordering(found), invalid)
    if data is not None:
        try:
            with runtime.sessions() as session:
                topics.update(session, key, data, actor=forms.staff_actor(request, staff))
                session.commit()
        except NotFound:
            return _missing(request, staff, key)
        return back_to(f"/console/topics/{key}/edit?saved=updated")
    return _editor(request, staff, found, shown=_shown(form), invalid=invalid)


def _find(session: Any, key: str) -> Topic | None:
    try:
        return topics.get(session, key)
    except NotFound:
        return None


def _validated(
    form: dict[str, list[str]], previous: Sequence[Sequence[str]], invalid: dict[str, str]
) -> TopicIn | None:
    """The form as the API's body, checked by the API's schema; None (with `invalid` filled
    in, by field) when it is refused."""
    try:
        return TopicIn.model_validate(_values(form, previous))
    except ValidationError as exc:
        worded = {error["loc"][0]: error["type"] for error in exc.errors() if error["loc"]}
        for field, message in forms.field_errors(exc).items():
            invalid[field] = _plain(field, str(worded.get(field, "")), message)
        return None


def _key_problem(key: str) -> str:
    if not key:
        return "Enter a key"
    if len(key) > 100:
        return "The key must be 100 characters or fewer"
    return (
        "Use only lowercase letters a-z, digits 0-9, '_', '.' and '-' in the key, "
        "starting with a letter or digit"
    )


def _plain(field: str, kind: str, message: str) -> str:
    if field in CAP_RANGE:
        span, numbers = CAP_RANGE[field]
        return f"Enter the cap per {span} as a whole number from {numbers}, or leave it empty"
    said = WORDS.get((field, kind))
    if said is not None:
        return said
    if field == "default_channels":
        return f"Default channels must also be allowed channels ({message})"
    return message[:1].upper() + message[1:]


def _values(form: dict[str, list[str]], previous: Sequence[Sequence[str]]) -> dict[str, Any]:
    """The body `PUT /v1/topics/{key}` would get. Lists keep the order the topic had (the
    preference order of its channels), new choices after; an empty cap is no cap."""
    allowed_before, default_before, frequencies_before = (*previous, (), (), ())[:3]
    default_channels = _ordered(form.get("default_channels", []), default_before)
    return {
        "name": first(form, "name").strip(),
        "description": first(form, "description").strip() or None,
        "category": first(form, "category") or None,
        "audience": first(form, "audience") or None,
        "allowed_channels": _ordered(form.get("allowed_channels", []), allowed_before),
        "default_channels": default_channels or None,
        "allowed_frequencies": _ordered(form.get("allowed_frequencies", []), frequencies_before),
        "public": bool(first(form, "public")),
        "required": bool(first(form, "required")),
        "bypass_quiet_hours": bool(first(form, "bypass_quiet_hours")),
        "tracking": _tracking(form),
        "track_sms": bool(first(form, "track_sms")),
        "cap_per_day": first(form, "cap_per_day").strip() or None,
        "cap_per_week": first(form, "cap_per_week").strip() or None,
        "cap_action": first(form, "cap_action") or "defer",
    }


def _tracking(form: dict[str, list[str]]) -> bool | None:
    """The tracking box; None (the category decides) when a new topic's box is as it was drawn
    for another category: the marketer changed the category, not the box, and without
    JavaScript the box cannot follow the category on the page itself."""
    ticked = bool(first(form, "tracking"))
    drawn_for, _, drawn = first(form, "tracking_drawn").partition(":")
    if drawn_for and drawn_for != first(form, "category") and ticked == (drawn == "yes"):
        return None
    return ticked


def _ordered(chosen: list[str], before: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(chosen))
    return [v for v in before if v in unique] + [v for v in unique if v not in before]


def _ordering(topic: Topic) -> tuple[list[str], list[str], list[str]]:
    return (topic.allowed_channels, topic.default_channels, topic.allowed_frequencies)


def _blank() -> dict[str, Any]:
    """A new topic: marketing, for everyone, by e-mail, shown on the preferences page."""
    return {
        "key": "",
        "name": "",
        "description": "",
        "category": TopicCategory.MARKETING.value,
        "audience": Audience.ALL.value,
        "allowed_channels": [Channel.EMAIL.value],
        "default_channels": [],
        "allowed_frequencies": [Frequency.IMMEDIATE.value],
        "public": True,
        "required": False,
        "bypass_quiet_hours": False,
        "tracking": True,  # as TopicIn decides for a marketing topic
        "track_sms": False,
        "cap_per_day": "",
        "cap_per_week": "",
        "cap_action": "defer",
    }


def _from_topic(topic: Topic) -> dict[str, Any]:
    return {
        "key": topic.key,
        "name": topic.name,
        "description": topic.description or "",
        "category": TopicCategory(topic.category).value,
        "audience": Audience(topic.audience).value,
        "allowed_channels": list(topic.allowed_channels),
        "default_channels": list(topic.default_channels),
        "allowed_frequencies": list(topic.allowed_frequencies),
        "public": topic.public,
        "required": topic.required,
        "bypass_quiet_hours": topic.bypass_quiet_hours,
        "tracking": topic.tracking,
        "track_sms": topic.track_sms,
        "cap_per_day": "" if topic.cap_per_day is None else str(topic.cap_per_day),
        "cap_per_week": "" if topic.cap_per_week is None else str(topic.cap_per_week),
        "cap_action": topic.cap_action,
    }


def _shown(form: dict[str, list[str]]) -> dict[str, Any]:
    """What was posted, to show again as it was typed."""
    return {
        "name": first(form, "name"),
        "description": first(form, "description"),
        "category": first(form, "category"),
        "audience": first(form, "audience"),
        "allowed_channels": form.get("allowed_channels", []),
        "default_channels": form.get("default_channels", []),
        "allowed_frequencies": form.get("allowed_frequencies", []),
        "public": bool(first(form, "public")),
        "required": bool(first(form, "required")),
        "bypass_quiet_hours": bool(first(form, "bypass_quiet_hours")),
        "tracking": _shown_tracking(form),
        "track_sms": bool(first(form, "track_sms")),
        "cap_per_day": first(form, "cap_per_day"),
        "cap_per_week": first(form, "cap_per_week"),
        "cap_action": first(form, "cap_action") or "defer",
    }


def _shown_tracking(form: dict[str, list[str]]) -> bool:
    tracking = _tracking(form)
    if tracking is None:
        return first(form, "category") == TopicCategory.MARKETING.value
    return tracking


def _editor(
    request: Request,
    staff: Staff,
    topic: Topic | None,
    *,
    shown: dict[str, Any],
    invalid: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response:
    invalid = invalid or {}
    editable = staff.may(StaffRole.MARKETER)
    if topic is None:
        title = "Create a topic"
    else:
        title = f"{'Edit topic' if editable else 'Topic'}: {topic.name}"
    problems = [(field, invalid[field]) for field in (*ORDER, "form") if field in invalid]
    return page(
        request,
        "topic_edit.html",
        title,
        staff,
        status=422 if invalid else 200,
        section="topics",
        topic=topic,
        form=shown,
        invalid=invalid,
        problems=problems,
        editable=editable,
        notice=notice,
        channels=CHANNELS,
        frequencies=FREQUENCIES,
        audiences=AUDIENCES,
        over_cap=OVER_CAP,
    )


def _missing(request: Request, staff: Staff, key: str) -> Response:
    return page(
        request,
        "topics.html",
        "No such topic",
        staff,
        status=404,
        section="topics",
        rows=[],
        errors=[f"There is no topic with the key {key}."],
    )
