"""A segment: which of a topic's audience a campaign reaches, by contact fields.

`{"kind": "client", "locales": ["ru"], "timezones": ["Europe/Moscow"], "attributes":
{"plan": "pro"}}`: every given condition must hold; a list holds when any of its values does;
a locale matches its language too ("ru" matches "ru-RU"); attribute values compare as text,
so 42 matches "42".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, String, cast, or_

from hub.db.models import Contact


def conditions(segment: dict[str, Any] | None) -> list[ColumnElement[bool]]:
    if not segment:
        return []
    found: list[ColumnElement[bool]] = []
    if segment.get("kind"):
        found.append(Contact.kind == segment["kind"])
    if locales := segment.get("locales"):
        found.append(
            or_(*(or_(Contact.locale == tag, Contact.locale.like(f"{tag}-%")) for tag in locales))
        )
    if zones := segment.get("timezones"):
        found.append(Contact.timezone.in_(zones))
    for key, value in (segment.get("attributes") or {}).items():
        found.append(cast(Contact.attributes[key].as_string(), String) == str(value))
    return found
