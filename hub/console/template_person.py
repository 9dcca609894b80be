"""Whom the template editor's preview shows when no contact is typed: a real person with
attributes (the stand-in has none, so every `contact.attributes.x` fails for it), preferring
one the edited language serves; and, when a preview fails for want of a variable, what to do
next."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.console.template_view import Advice
from hub.db.models import Contact

# The newest contacts a sample is chosen from: by id, which is indexed, so a large contact
# table is not sorted for each preview.
SCAN = 200
SHOWN_ATTRIBUTES = 4


@dataclass(frozen=True, slots=True)
class Person:
    """Whom a preview shows when the Contact field is left empty."""

    external_id: str | None  # None: the stand-in (there is no contact yet)
    name: str
    why: str  # "the newest contact with attributes (plan, city)"

    @property
    def called(self) -> str:
        if self.external_id is None:
            return self.name
        return f"{self.name} ({self.external_id})" if self.name else self.external_id


STAND_IN = Person(
    None, "Sample Person", "a stand-in: there are no contacts yet, so its attributes are empty"
)


@dataclass(frozen=True, slots=True)
class _Row:
    external_id: str
    name: str | None
    locale: str | None
    attributes: dict[str, Any]


class People:
    """The newest contacts, read once per page: whom to preview, and who has an attribute."""

    def __init__(self, session: Session) -> None:
        query = (
            select(Contact.external_id, Contact.name, Contact.locale, Contact.attributes)
            .order_by(Contact.id.desc())
            .limit(SCAN)
        )
        self.rows = [_Row(*row) for row in session.execute(query)]

    def choose(self, *, locale: str, variants: list[str]) -> Person:
        """The newest contact with attributes whose language the edited variant serves; else
        the newest with attributes; else the newest at all; else the stand-in."""
        ranked = sorted(
            self.rows,
            key=lambda r: (not r.attributes, not _serves(locale, r.locale, variants)),
        )  # stable: newest first within each rank
        if not ranked:
            return STAND_IN
        row = ranked[0]
        name = row.name or ""
        if not row.attributes:
            why = "the newest contact; none of the newest has attributes, so they are empty"
            return Person(row.external_id, name, why)
        names = sorted(row.attributes)  # PostgreSQL's JSONB keeps no order
        shown = ", ".join(names[:SHOWN_ATTRIBUTES]) + (
            ", …" if len(names) > SHOWN_ATTRIBUTES else ""
        )
        place = " in this language" if locale and _serves(locale, row.locale, variants) else ""
        return Person(row.external_id, name, f"the newest contact{place} with attributes ({shown})")

    def holding(self, attribute: str, *, besides: str | None) -> str | None:
        """The external id of a recent contact who has `attribute`, for "preview with them"."""
        for row in self.rows:
            if attribute in row.attributes and row.external_id != besides:
                return row.external_id
        return None


def _serves(variant: str, locale: str | None, variants: list[str]) -> bool:
    """Whether a person speaking `locale` gets `variant`: the renderer's fallback, "ru-RU" to
    "ru" to the default, over the variants the template has."""
    have = {v.lower() for v in variants} | {""}
    subtags = (locale or "").strip().replace("_", "-").lower().split("-")
    chain = ["-".join(subtags[:n]) for n in range(len(subtags), 0, -1) if subtags[0]]
    served = next((c for c in chain if c in have), "")
    return served == variant.lower()


def advice(
    *,
    failures: list[str],
    missing: list[str],
    person: str,
    people: People,
    person_id: str | None,
    from_campaign: bool,
) -> list[Advice]:
    """For each variable the preview lacked that a failure names (by its last step, so the
    errors' wording may change), what would make it render."""
    found: list[Advice] = []
    for path in missing:
        steps = [s for s in re.split(r"[.\[\]]", path) if s]
        if len(steps) < 2 or not any(
            re.search(rf"(?<!\w){re.escape(steps[-1])}(?!\w)", f) for f in failures
        ):
            continue
        if steps[:2] == ["contact", "attributes"] and len(steps) > 2:
            name = steps[2]
            holder = people.holding(name, besides=person_id)
            who = f", such as {holder}," if holder else ""
            found.append(
                Advice(
                    "contact",
                    f"{person} has no attribute “{name}”, and the message fails for everyone "
                    "without it. Give it a default in the template, e.g.",
                    f'{{{{ contact.attributes.{name} | default("…") }}}}',
                    f", or preview with someone who has it{who} by typing their id in Contact.",
                )
            )
        elif steps[0] == "data":
            dotted = ".".join(steps[1:])
            whose = "The campaign's data" if from_campaign else "The data"
            where = (
                "on the campaign's page (to try a value first, add it to Data below and preview)"
                if from_campaign
                else "to Data (JSON), as a notification or campaign would give it"
            )
            found.append(
                Advice(
                    "pdata",
                    f"{whose} has no “{dotted}”. Add it {where}, or give it a default in the "
                    "template, e.g.",
                    f'{{{{ data.{dotted} | default("…") }}}}',
                    ".",
                )
            )
        elif steps[0] == "contact":
            found.append(
                Advice(
                    "contact",
                    f"A contact has no “{steps[1]}”: a template reads contact.name, "
                    "contact.external_id, contact.locale, contact.timezone and "
                    "contact.attributes.<name>.",
                )
            )
    return found
