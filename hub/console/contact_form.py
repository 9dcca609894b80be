"""The contact form: what it offers (time zones, employees to suggest as owner, the teams),
what it shows for a person, and what it posts, read by the API's own schema (`ContactIn`) so
the console refuses what the API refuses, every problem tied to its field. Saving is the
pages' (`contact_pages`), through the same service as the API."""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.console.audience_forms import (
    AttributeRow,
    Problem,
    Refused,
    attributes_from,
    problems_of,
)
from hub.db.models import Contact, Team
from hub.domain import ContactKind
from hub.fields import ExternalId
from hub.schemas.contacts import ContactIn
from hub.services import contact_care
from hub.web.forms import first

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
    "owner": "Owner",
    "teams": "Teams",
}
_TEXT_FIELDS = ("name", "email", "phone", "webhook_url", "locale")
_EXTERNAL_ID: TypeAdapter[str] = TypeAdapter(ExternalId)
# The owner field suggests employees from a <datalist> up to this many; past it, it is a plain
# text field (a list that long is no help, and reading it on every form is not free).
SUGGESTED_EMPLOYEES = 300
TEAMS_SHOWN = "teams_shown"  # posted with the team checkboxes: "none ticked" means no teams


@functools.cache
def time_zones() -> list[str]:
    """The IANA zones the time zone field suggests (any the API accepts may be typed)."""
    return sorted(zoneinfo.available_timezones())


@dataclass(frozen=True, slots=True)
class Choices:
    """What the form offers: employees to suggest as owner (None: too many to list) and the
    teams as (key, name)."""

    employees: list[tuple[str, str | None]] | None
    teams: list[tuple[str, str]]


def choices(session: Session) -> Choices:
    """The employees (when few enough to list: one bounded read) and the teams."""
    found = session.execute(
        select(Contact.external_id, Contact.name)
        .where(Contact.kind == ContactKind.EMPLOYEE)
        .limit(SUGGESTED_EMPLOYEES + 1)
    )
    employees = [(external_id, name) for external_id, name in found]
    suggested = sorted(employees) if len(employees) <= SUGGESTED_EMPLOYEES else None
    return Choices(employees=suggested, teams=all_teams(session))


def all_teams(session: Session) -> list[tuple[str, str]]:
    """Every team as (key, name), by name."""
    found = session.execute(select(Team.key, Team.name).order_by(Team.name, Team.key))
    return [(key, name) for key, name in found]


def care_of(session: Session, contact: Contact) -> dict[str, Any]:
    """The form's `owner` (a client's: an employee's form has no owner field) and `teams`."""
    state = contact_care.state_of(session, contact)
    found: dict[str, Any] = {"teams": state.teams}
    if contact.kind is ContactKind.CLIENT:
        found["owner"] = state.owner or ""
    return found


def _care_posted(form: dict[str, list[str]]) -> dict[str, Any]:
    """`owner` and `teams` as posted, each only when the form had the field: a field the page
    did not show leaves that part as it is."""
    found: dict[str, Any] = {}
    if "owner" in form:
        found["owner"] = first(form, "owner").strip()
    if TEAMS_SHOWN in form:
        found["teams"] = [key.strip() for key in form.get("teams", []) if key.strip()]
    return found


def _care_given(values: dict[str, Any]) -> dict[str, Any]:
    """The owner and teams as `ContactIn` takes them: an empty owner is "no one"."""
    care: dict[str, Any] = {}
    if "owner" in values:
        care["owner"] = values["owner"] or None
    if "teams" in values:
        care["teams"] = list(values["teams"])
    return care


def values(form: dict[str, list[str]], names: tuple[str, ...]) -> dict[str, Any]:
    """The fields as posted, stripped, with the owner and teams when the form had them."""
    return {name: first(form, name).strip() for name in names} | _care_posted(form)


def more(rows: list[AttributeRow]) -> list[AttributeRow]:
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


def checked(
    values: dict[str, Any], rows: list[AttributeRow], *, removed: Any, creating: bool
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
        problems += problems_of(exc, labels=LABELS)
    problems += in_rows
    if problems:
        raise Refused(problems)
    return external_id, body


def _given(values: dict[str, Any], attributes: dict[str, Any], *, clear: bool) -> dict[str, Any]:
    """The contact's fields as the API takes them. An empty text field is left out of a new
    person and, when changing one (`clear`), clears the field; removed attributes are sent as
    null, which the API's PATCH takes as "remove this key". The owner and teams are sent when
    the form had them (an empty owner: no one), as the API's own `owner` and `teams`."""
    given: dict[str, Any] = {"kind": values.get("kind") or "client"}
    for name in _TEXT_FIELDS:
        if values.get(name) or clear:
            given[name] = values.get(name) or None
    given["timezone"] = values.get("timezone") or "UTC"
    given["attributes"] = attributes
    return given | _care_given(values)


def problems(exc: Exception) -> list[Problem]:
    """A refused form's problems, each field named by its label."""
    return problems_of(exc, labels=LABELS)
