"""The template editor opened from a campaign's dry run (`campaign`, `part`, `line` in the
query; older links only `#part`, the campaign then read from the Referer): the part's field
focused, each failing part marked with its line by a fresh render for the preview's person
with the campaign's data and topic, what to do next, and the way back to the campaign, kept
through a preview and a save.

Nothing of the query string is shown: the campaign by its stored name, a part by its known
name, a line only as a number; the message is the fresh render's. A bad value is ignored."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.campaigns import service as campaigns
from hub.console.template_person import People, Person, advice
from hub.console.template_view import PARTS, Advice
from hub.db.models import Template, Topic
from hub.schemas.templates import PreviewIn
from hub.services import template_preview, templates
from hub.services.errors import HubError
from hub.templates import TemplateError, variables
from hub.templates.isolation import RenderProcesses

MAX_LINE = 100_000
MAX_ID = 2**63 - 1
_REFERRED = re.compile(r"/console/campaigns/(\d{1,19})")


@dataclass(frozen=True, slots=True)
class FromCampaign:
    """The campaign whose dry run led here: the way back, and the data and topic it sends."""

    id: int
    name: str
    data: dict[str, Any]
    topic: str | None

    @property
    def url(self) -> str:
        return f"/console/campaigns/{self.id}"


def positive(raw: str, *, most: int) -> int | None:
    """A query value as a positive integer, or None: a bad one is ignored, not refused."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(most)):
        return None
    value = int(raw)
    return value if 0 < value <= most else None


def known_part(raw: str) -> str | None:
    return raw if raw in PARTS else None


def referred_campaign(referer: str | None, host: str) -> str:
    """The campaign page a link was followed from (this console, same host), as its id's
    digits: the dry run's older links carry no `campaign` parameter."""
    if not referer:
        return ""
    parts = urlsplit(referer)
    found = _REFERRED.fullmatch(parts.path)
    return found.group(1) if found and parts.netloc == host else ""


def from_campaign(session: Session, raw: str, *, key: str) -> FromCampaign | None:
    """The campaign `raw` names, if it is a positive id of one that sends this template."""
    number = positive(raw, most=MAX_ID)
    if number is None:
        return None
    try:
        campaign = campaigns.get(session, number)
    except HubError:
        return None
    if campaign.template_key != key:
        return None
    topic = session.scalar(select(Topic.key).where(Topic.id == campaign.topic_id))
    return FromCampaign(campaign.id, campaign.name, dict(campaign.data or {}), topic)


@dataclass(frozen=True, slots=True)
class Failure:
    """One part's failure in a fresh render."""

    variant: str
    part: str
    line: int | None
    message: str
    text: str | None  # the line itself, from the stored part


@dataclass
class Marks:
    """What a fresh render found: failures by part in the edited variant, the others'
    (a part served by the default variant), and whom and with what it rendered."""

    person: str
    with_campaign: bool
    here: dict[str, Failure] = field(default_factory=dict)
    elsewhere: list[Failure] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # variables the render's context lacks

    def messages(self) -> list[str]:
        return [f.message for f in (*self.here.values(), *self.elsewhere)]


def fresh_render(
    session: Session,
    processes: RenderProcesses,
    *,
    key: str,
    locale: str,
    variants: dict[str, dict[str, Any]],
    person: Person,
    origin: FromCampaign | None,
    public_url: str,
) -> Marks | None:
    """Render the stored template for the preview's person (with the campaign's data and
    topic, when it came from one) and mark each failing part; None when it cannot be tried
    (the person was erased meanwhile, the campaign's data no longer validates)."""
    try:
        asked = PreviewIn.model_validate(
            {
                "contact": person.external_id,
                "data": origin.data if origin else {},
                "locale": locale or None,
                "topic": origin.topic if origin else None,
            }
        )
        sample = template_preview.sample(session, asked, public_url=public_url)
    except (ValidationError, HubError):
        return None
    try:
        attempts = processes.attempts(
            templates.doc(key, variants),
            locale=sample.locale,
            context=sample.context,
            links=sample.links,
        )
        errors = [a.error for a in attempts if a.error is not None]
    except TemplateError as exc:  # does not compile, or its process overran
        errors = [exc]
    marks = Marks(person.called, origin is not None)
    for error in errors:
        failure = _failure(error, variants)
        if failure is None:
            continue
        if failure.variant.lower() == locale.lower():
            marks.here.setdefault(failure.part, failure)
        elif failure not in marks.elsewhere:
            marks.elsewhere.append(failure)
    if errors:
        try:
            paths = template_preview.variables(processes, key, variants)
        except TemplateError:  # its process overran: the marks are still worth showing
            paths = []
        values = sample.values()
        marks.missing = [p for p in paths if not variables.lookup(values, p)[0]]
    return marks


def _failure(error: TemplateError, variants: dict[str, dict[str, Any]]) -> Failure | None:
    """A render error named by its path ("variants.ru.sms_body"), with its line's text."""
    if not error.field.startswith("variants."):
        return None
    variant, _, rest = error.field.removeprefix("variants.").partition(".")
    part = rest.split(".", 1)[0]
    if part not in PARTS:
        return None
    source = variants.get(variant, {}).get(part)
    text = None
    if isinstance(source, str) and error.line:
        lines = source.splitlines()
        if 0 < error.line <= len(lines):
            text = lines[error.line - 1].strip() or None
    return Failure(variant, part, error.line, error.message, text)


@dataclass(frozen=True, slots=True)
class Helping:
    """What the editor says to help: whom an empty Contact field previews; opened from a
    campaign, the way back, the part to focus, the dry run's line, the fresh render's
    failures and what to do next."""

    person: Person
    origin: FromCampaign | None = None
    part: str | None = None
    line: int | None = None
    focus: str | None = None  # the field to put the cursor in
    marks: Marks | None = None
    advice: list[Advice] = field(default_factory=list)

    def keep(self) -> str:
        """The validated campaign and part, carried through the form and its redirect."""
        if self.origin is None:
            return ""
        return f"&campaign={self.origin.id}" + (f"&part={self.part}" if self.part else "")


def plain(session: Session, *, found: Template | None, locale: str) -> Helping:
    return Helping(person=_people_choose(People(session), found, locale))


def posted(
    session: Session, *, found: Template | None, key: str, locale: str, campaign: str, part: str
) -> Helping:
    """For a posted form: the campaign and part it was opened for, kept, and whom an empty
    Contact field previews."""
    return Helping(
        person=_people_choose(People(session), found, locale),
        origin=from_campaign(session, campaign, key=key),
        part=known_part(part),
    )


def opened(
    session: Session,
    processes: RenderProcesses,
    *,
    found: Template | None,
    asked: dict[str, str],
    render: bool,
    focus: bool,
    public_url: str,
) -> Helping:
    """The editor as a link opened it. `asked`: the query's key, locale, campaign, part and
    line; `render`: whether the staff member may run the template with a contact's data;
    `focus`: whether to put the cursor in the part (not after a save, whose notice is read)."""
    key, locale = asked["key"], asked["locale"]
    people = People(session)
    person = _people_choose(people, found, locale)
    origin = from_campaign(session, asked["campaign"], key=key)
    marks = None
    if found is not None and origin is not None and render:
        marks = fresh_render(
            session,
            processes,
            key=key,
            locale=locale,
            variants=found.variants,
            person=person,
            origin=origin,
            public_url=public_url,
        )
    part = known_part(asked["part"])
    first = next((name for name in PARTS if marks and name in marks.here), None)
    said = []
    if marks is not None:
        said = advice(
            failures=marks.messages(),
            missing=marks.missing,
            person=person.called,
            people=people,
            person_id=person.external_id,
            from_campaign=True,
        )
    return Helping(
        person=person,
        origin=origin,
        part=part,
        line=positive(asked["line"], most=MAX_LINE),
        focus=(part or first) if focus else None,
        marks=marks,
        advice=said,
    )


def _people_choose(people: People, found: Template | None, locale: str) -> Person:
    return people.choose(locale=locale, variants=sorted(found.variants) if found else [])
