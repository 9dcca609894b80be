"""What the audience pages' forms share (contacts, subscriptions, preferences, imports): the
problems of a refused form, each tied to the input it is about, so the page shows a GOV.UK
error summary linking to each field and the message beside it; channels chosen in order of
preference without JavaScript; attributes typed as rows; the staff member as the actor."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from hub.console.auth import Staff
from hub.domain import ActorKind, Channel
from hub.services.actor import Actor
from hub.services.errors import HubError, InvalidField
from hub.web.forms import first

CONSOLE_SOURCE = "console"
CHANNEL_NAMES = {
    Channel.EMAIL: "E-mail",
    Channel.SMS: "SMS",
    Channel.VOICE: "Voice call",
    Channel.WEBHOOK: "Webhook",
}
ORDINALS = ("1st", "2nd", "3rd", "4th")
ATTRIBUTE_TYPES = (
    ("text", "Text"),
    ("number", "Number"),
    ("yes-no", "Yes or no"),
    ("json", "JSON"),
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a form: `field` is the id of the input it is about."""

    field: str
    message: str


class Refused(Exception):
    """A form's input that cannot be used, with every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = list(problems)


def staff_actor(request: Request, staff: Staff) -> Actor:
    """The staff member as the timeline records them: ActorKind.STAFF, their e-mail."""
    return Actor(
        kind=ActorKind.STAFF,
        name=staff.email,
        source=CONSOLE_SOURCE,
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def problems_of(
    exc: Exception, *, labels: Mapping[str, str], ids: Mapping[str, str] | None = None
) -> list[Problem]:
    """A refused form's problems from what the schema or a service said. A field is named by
    its label in the message; `ids` maps a service's field name (`channels[0]`) to the input
    it is about, where the two differ; otherwise the field's first part is the input's id."""
    ids = ids or {}
    if isinstance(exc, Refused):
        return exc.problems
    if isinstance(exc, ValidationError):
        found = []
        for error in exc.errors(include_url=False):
            parts = [str(p) for p in error["loc"] if not isinstance(p, int)]
            name = ".".join(parts) or "form"
            message = error["msg"].removeprefix("Value error, ")
            found.append(_problem(name, message, labels, ids))
        return found
    if isinstance(exc, InvalidField):
        return [_problem(exc.field, exc.message.removeprefix(f"{exc.field}: "), labels, ids)]
    if isinstance(exc, HubError):
        details = exc.details if isinstance(exc.details, list) else []
        field = next((d.get("field") for d in details if isinstance(d, dict)), None)
        return [_problem(str(field or "form"), exc.message, labels, ids)]
    raise exc


def _problem(name: str, message: str, labels: Mapping[str, str], ids: Mapping[str, str]) -> Problem:
    field = next(
        (ids[n] for n in (name, name.partition("[")[0], name.partition(".")[0]) if n in ids),
        name.partition(".")[0].partition("[")[0],
    )
    label = labels.get(name) or labels.get(field) or name
    return Problem(field, f"{label}: {message}")


def ranked_channels(
    form: dict[str, list[str]], channels: Sequence[Channel], *, field: str = "rank"
) -> list[Channel]:
    """Channels in order of preference from one select per channel (`rank-email` = 1, 2...,
    empty when not used). Raises Refused when two share a place."""
    chosen: dict[int, Channel] = {}
    problems = []
    for channel in channels:
        value = first(form, f"{field}-{channel.value}").strip()
        if not value:
            continue
        if not value.isdigit() or not 1 <= int(value) <= len(ORDINALS):
            problems.append(
                Problem(
                    f"{field}-{channel.value}",
                    f"{CHANNEL_NAMES[channel]}: choose its place from the list",
                )
            )
            continue
        place = int(value)
        if place in chosen:
            problems.append(
                Problem(
                    f"{field}-{channel.value}",
                    f"{CHANNEL_NAMES[channel]}: {CHANNEL_NAMES[chosen[place]]} is already "
                    f"{ORDINALS[place - 1]} choice; give each channel its own place",
                )
            )
            continue
        chosen[place] = channel
    if problems:
        raise Refused(problems)
    return [chosen[place] for place in sorted(chosen)]


def rank_ids(channels: Sequence[Channel], *, field: str = "rank") -> dict[str, str]:
    """`channels[i]`, as a service names the i-th channel asked for, to its select's id."""
    return {f"channels[{i}]": f"{field}-{c.value}" for i, c in enumerate(channels)} | {
        "channels": f"{field}-{channels[0].value}" if channels else f"{field}-email"
    }


@dataclass(frozen=True, slots=True)
class AttributeRow:
    key: str
    value: str
    type: str  # one of ATTRIBUTE_TYPES


def attribute_rows(attributes: Mapping[str, Any], *, blank: int) -> list[AttributeRow]:
    """A contact's attributes as editable rows, then `blank` empty ones to add more."""
    rows = [AttributeRow(key, *_shown(value)) for key, value in sorted(attributes.items())]
    return rows + [AttributeRow("", "", "text")] * blank


def _shown(value: Any) -> tuple[str, str]:
    if isinstance(value, bool):
        return ("yes" if value else "no"), "yes-no"
    if isinstance(value, int | float):
        return json.dumps(value), "number"
    if isinstance(value, str):
        return value, "text"
    return json.dumps(value, ensure_ascii=False), "json"


def posted_rows(form: Mapping[str, list[str]]) -> list[AttributeRow]:
    """The attribute rows as posted (`attr_key`, `attr_value`, `attr_type`, repeated)."""
    keys, values, types = (form.get(f"attr_{name}", []) for name in ("key", "value", "type"))
    return [
        AttributeRow(key, values[i] if i < len(values) else "", types[i] if i < len(types) else "")
        for i, key in enumerate(keys)
    ]


def attributes_from(rows: Sequence[AttributeRow]) -> dict[str, Any]:
    """The attributes the rows spell, each value read as its type says. A row without a
    name is left out (that is how an attribute is removed). Raises Refused naming each row."""
    found: dict[str, Any] = {}
    problems = []
    for index, row in enumerate(rows):
        key = row.key.strip()
        if not key:
            continue
        anchor = f"attr-value-{index}"
        if key in found:
            problems.append(Problem(f"attr-key-{index}", f"Attribute {key}: named twice"))
            continue
        try:
            found[key] = _typed(row.value, row.type)
        except ValueError as exc:
            problems.append(Problem(anchor, f"Attribute {key}: {exc}"))
    if problems:
        raise Refused(problems)
    return found


def _typed(text: str, kind: str) -> Any:
    value = text.strip()
    if kind == "number":
        try:
            number = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            raise ValueError("enter a number, like 42 or 9.5") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError("enter a number, like 42 or 9.5")
        return number
    if kind == "yes-no":
        if value.lower() in {"yes", "true", "1"}:
            return True
        if value.lower() in {"no", "false", "0"}:
            return False
        raise ValueError("enter yes or no")
    if kind == "json":
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            raise ValueError('enter JSON, like {"size": "M"} or [1, 2]') from None
    return text  # text, kept as typed
