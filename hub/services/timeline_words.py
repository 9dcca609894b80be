"""A timeline event in plain words, as the console shows it: "E-mail sent to ada@example.com
for campaign 'Spring offer' (notification #3)", with the event's stored data beside it as
rows of a two-column table for support staff.

Pure: an event and the facts its ids point to (read once a page by `timeline_entries`) go
in, words come out. Ids become `Ref`s, not URLs: the console decides where each one leads.
The sentences live by subject in `timeline_delivery_words`, `timeline_people_words` and
`timeline_notification_words`, their shared phrases in `timeline_phrases`. A kind with no
words gets None from `sentence`, and the page shows the kind itself as it always did; the
unit tests fail when `EventType` gains a kind that is not worded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hub.services import (
    timeline_care_words,
    timeline_delivery_words,
    timeline_notification_words,
    timeline_people_words,
    timeline_refusal_words,
)
from hub.services.timeline_phrases import (
    Event,
    Known,
    Part,
    Ref,
    RefKind,
    Sending,
    Words,
    integer,
    notification_id,
    plain,
)

__all__ = [
    "MAX_DETAILS",
    "WORDED",
    "Event",
    "Known",
    "Part",
    "Ref",
    "RefKind",
    "Sending",
    "Words",
    "details",
    "fallback",
    "plain",
    "sentence",
]

MAX_DETAILS = 12  # rows of an event's details table; the rest is counted in the last row

_SAYERS: dict[str, Callable[[Event, Known], Words]] = {
    **timeline_people_words.SAYERS,
    **timeline_delivery_words.SAYERS,
    **timeline_notification_words.SAYERS,
    **timeline_refusal_words.SAYERS,
    **timeline_care_words.SAYERS,
}
WORDED = frozenset(_SAYERS)  # the kinds with words


def sentence(event: Event, known: Known) -> Words | None:
    """The event in words, or None for a kind with no words (the page then shows the kind)."""
    say = _SAYERS.get(event.kind)
    return None if say is None else say(event, known)


def fallback(event: Event) -> Words:
    """What the timeline showed before it had words: the kind, channel, topic and reason."""
    said = [event.kind]
    said += [f" · {v}" for v in (event.channel, event.topic_key) if v]
    if event.reason:
        said.append(f": {event.reason}")
    return ("".join(said),)


def details(event: Event, known: Known) -> list[tuple[str, Words]]:
    """The event's stored data as (name, value) rows: a change as `before → after`, the
    notification id linked, and the template it was rendered from when that is known."""
    rows: list[tuple[str, Words]] = []
    changes = event.changes
    if isinstance(changes, Mapping):
        for name, change in changes.items():
            rows.append((str(name), _detail(str(name), change)))
    elif changes is not None:
        rows.append(("data", (_value(changes),)))
    if event.reason:
        rows.append(("reason", (event.reason,)))
    sending = known.notifications.get(notification_id(event) or 0)
    if sending is not None and sending.template_key:
        rows.append(("template", (_template(sending),)))
    if len(rows) > MAX_DETAILS:
        rest = len(rows) - MAX_DETAILS + 1
        rows = [*rows[: MAX_DETAILS - 1], ("…", (f"and {rest} more (the API's timeline has all)",))]
    return rows


def _template(sending: Sending) -> Ref:
    key = sending.template_key or ""
    version = f", version {sending.template_version}" if sending.template_version else ""
    return Ref(RefKind.TEMPLATE, key, f"{key}{version}")


def _detail(name: str, change: Any) -> Words:
    if isinstance(change, Mapping) and change.keys() == {"before", "after"}:
        return (f"{_value(change['before'])} → {_value(change['after'])}",)
    if name in {"notification_id", "notification"} and (number := integer(change)) is not None:
        return (Ref(RefKind.NOTIFICATION, str(number), f"#{number}"),)
    return (_value(change),)


def _value(value: Any) -> str:
    if value is None or value in ([], ""):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    return str(value)
