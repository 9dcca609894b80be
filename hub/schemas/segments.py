"""Saved segments: a tree of conditions over contacts, as the API takes it and Hub stores it.

A node is an object with exactly one key. Groups nest nodes: `{"all": [...]}` (every one
holds), `{"any": [...]}` (at least one holds), `{"not": node}` (it does not hold). The
conditions:

    {"kind": "client"}
    {"locale": ["ru", "en-GB"]}            a language matches its regions: "ru" takes ru-RU
    {"timezone": ["Europe/Moscow"]}
    {"subscription": {"topic": "news", "channel": "sms"}}      channel optional
    {"attribute": {"name": "plan", "equals": "pro"}}           also not_equals, in, contains,
    {"attribute": {"name": "spent", "min": 100, "max": 500}}   exists; min/max for numbers,
    {"attribute": {"name": "renewal", "since": "2025-01-01"}}  since/until for dates
    {"created": {"since": "2025-01-01", "until": "2025-03-31"}}

Ranges include their ends; a date `until` includes that whole day (days are UTC days for
`created`, and the date written in the attribute for attributes). Groups nest at most
`MAX_DEPTH` deep and a tree holds at most `MAX_CONDITIONS` conditions.

Campaigns stored before trees existed hold the flat form `{"kind", "locales", "timezones",
"attributes"}` (every given condition holds); `as_tree` reads both.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from hub.domain import Channel, ContactKind
from hub.fields import Key, Locale, MaybeLongText, Text255, TimeZone, no_control_characters
from hub.schemas.base import Out, Strict

MAX_DEPTH = 5
MAX_CONDITIONS = 50
MAX_VALUES = 100
GROUPS = ("all", "any", "not")
CONDITIONS = ("kind", "locale", "timezone", "subscription", "attribute", "created")
FLAT_KEYS = frozenset({"kind", "locales", "timezones", "attributes"})


def _attribute_name(value: str) -> str:
    # A SQLite JSON path quotes the name: a double quote or backslash would end it early.
    if '"' in value or "\\" in value:
        raise ValueError('must not contain " or \\')
    return no_control_characters(value)


AttributeName = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(_attribute_name)
]
Text = Annotated[str, StringConstraints(max_length=255), AfterValidator(no_control_characters)]
Number = Annotated[float, Field(allow_inf_nan=False)]
Scalar = Text | int | Number | StrictBool


class Range(Strict):
    """Both ends optional, both included; at least one given."""

    @model_validator(mode="after")
    def _an_end(self) -> Self:
        low, high = self._ends()
        if low is None and high is None:
            names = " or ".join(type(self).model_fields)
            raise ValueError(f"give {names}")
        if low is not None and high is not None and low > high:
            first, second = type(self).model_fields
            raise ValueError(f"{first} comes after {second}")
        return self

    def _ends(self) -> tuple[Any, Any]:
        low, high = type(self).model_fields
        return getattr(self, low), getattr(self, high)


class DateRange(Range):
    since: dt.date | None = Field(None, description="On or after this day (UTC).")
    until: dt.date | None = Field(None, description="On or before this day (UTC), all of it.")


class SubscriptionTest(Strict):
    topic: Key = Field(description="Subscribed (and confirmed) to this topic.")
    channel: Channel | None = Field(None, description="And chose this channel for it.")


# Which of an attribute test's fields belong to one test; exactly one test per condition.
ATTRIBUTE_TESTS = {
    "equals": ("equals",),
    "not_equals": ("not_equals",),
    "in": ("in",),
    "contains": ("contains",),
    "exists": ("exists",),
    "number": ("min", "max"),
    "date": ("since", "until"),
}


class AttributeTest(Strict):
    """One test of one attribute. Text tests read a number or true/false as JSON writes it
    (42 equals "42"); a number given to equals, not_equals or in compares as a number. A
    value that is not a number (or not a YYYY-MM-DD date) never falls in a range."""

    name: AttributeName = Field(description="The attribute's name (a top-level key).")
    equals: Scalar | None = Field(None, description="The value is exactly this.")
    not_equals: Scalar | None = Field(None, description="Also true when the attribute is missing.")
    in_: list[Scalar] | None = Field(
        None, alias="in", min_length=1, max_length=MAX_VALUES, description="Equals one of them."
    )
    contains: Annotated[Text, StringConstraints(min_length=1)] | None = Field(
        None, description="Text that holds this, ignoring case (of Latin letters on SQLite)."
    )
    exists: StrictBool | None = Field(
        None, description="true: present and not null; false: missing or null."
    )
    min: Number | None = Field(None, description="A number at least this.")
    max: Number | None = Field(None, description="A number at most this.")
    since: dt.date | None = Field(None, description="A date on or after this day.")
    until: dt.date | None = Field(None, description="A date on or before this day.")

    @model_validator(mode="after")
    def _one_test(self) -> Self:
        given = [
            test
            for test, fields in ATTRIBUTE_TESTS.items()
            if any(getattr(self, _attr(f)) is not None for f in fields)
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one test: equals, not_equals, in, contains, exists, "
                "min and/or max, or since and/or until"
            )
        for low, high in (("min", "max"), ("since", "until")):
            a, b = getattr(self, low), getattr(self, high)
            if a is not None and b is not None and a > b:
                raise ValueError(f"{low} comes after {high}")
        return self

    @property
    def test(self) -> str:
        return next(
            test
            for test, fields in ATTRIBUTE_TESTS.items()
            if any(getattr(self, _attr(f)) is not None for f in fields)
        )


def _attr(field: str) -> str:
    return "in_" if field == "in" else field


class Condition(BaseModel):
    """A group of conditions or one condition: an object with exactly one key."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "minProperties": 1,
            "maxProperties": 1,
            "examples": [
                {
                    "all": [
                        {"kind": "client"},
                        {
                            "any": [
                                {"attribute": {"name": "plan", "equals": "pro"}},
                                {"attribute": {"name": "spent", "min": 100}},
                            ]
                        },
                        {"not": {"subscription": {"topic": "news", "channel": "sms"}}},
                    ]
                }
            ],
        },
    )

    all_: list[Condition] | None = Field(
        None, alias="all", min_length=1, max_length=MAX_CONDITIONS, description="Every one holds."
    )
    any_: list[Condition] | None = Field(
        None,
        alias="any",
        min_length=1,
        max_length=MAX_CONDITIONS,
        description="At least one holds.",
    )
    not_: Condition | None = Field(None, alias="not", description="It does not hold.")
    kind: ContactKind | None = Field(None, description="The contact is a client, or an employee.")
    locale: list[Locale] | None = Field(
        None,
        min_length=1,
        max_length=MAX_VALUES,
        description='Any of these languages; "ru" matches ru-RU too.',
    )
    timezone: list[TimeZone] | None = Field(
        None, min_length=1, max_length=MAX_VALUES, description="Any of these IANA zones."
    )
    subscription: SubscriptionTest | None = Field(
        None, description="Subscribed to a topic (on a channel)."
    )
    attribute: AttributeTest | None = Field(None, description="One attribute passes a test.")
    created: DateRange | None = Field(None, description="When the contact was added.")

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        if len(self.given()) != 1:
            raise ValueError(f"give exactly one of: {', '.join(GROUPS + CONDITIONS)}")
        return self

    def given(self) -> list[str]:
        """The names (as written in JSON) of the keys this node has."""
        return [
            name
            for name in GROUPS + CONDITIONS
            if getattr(self, f"{name}_" if name in GROUPS else name) is not None
        ]

    @property
    def key(self) -> str:
        return self.given()[0]

    def dump(self) -> dict[str, Any]:
        """As stored and shown: JSON names, nothing unset."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


Condition.model_rebuild()


def _path(parts: list[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the top"


def within_limits(value: Any) -> Any:
    """Refuse a tree deeper than MAX_DEPTH groups or with more than MAX_CONDITIONS
    conditions before it is parsed (a deep tree would otherwise cost a parse first). Walks
    the raw JSON without recursion; anything that is not a tree is left to the model."""
    pending: list[tuple[Any, int, list[str | int]]] = [(value, 0, [])]
    leaves = 0
    while pending:
        node, depth, path = pending.pop()
        if not isinstance(node, dict):
            continue
        groups = [k for k in GROUPS if k in node]
        if not groups:
            leaves += 1
            if leaves > MAX_CONDITIONS:
                raise ValueError(f"holds more than {MAX_CONDITIONS} conditions")
            continue
        if depth + 1 > MAX_DEPTH:
            raise ValueError(f"{_path(path)}: groups nest at most {MAX_DEPTH} deep")
        for key in groups:
            children = node[key]
            if key == "not":
                pending.append((children, depth + 1, [*path, key]))
            elif isinstance(children, list):
                pending.extend(
                    (child, depth + 1, [*path, key, i]) for i, child in enumerate(children)
                )
    return value


Conditions = Annotated[
    Condition,
    BeforeValidator(within_limits),
    Field(description="A tree of conditions: see the Condition schema."),
]


def from_flat(flat: dict[str, Any]) -> dict[str, Any] | None:
    """The tree of a flat segment (`{"kind", "locales", "timezones", "attributes"}`, every
    given condition holds); None when it gives none."""
    parts: list[dict[str, Any]] = []
    if flat.get("kind"):
        parts.append({"kind": flat["kind"]})
    if flat.get("locales"):
        parts.append({"locale": list(flat["locales"])})
    if flat.get("timezones"):
        parts.append({"timezone": list(flat["timezones"])})
    for name, value in (flat.get("attributes") or {}).items():
        # The flat form compared as text: "42" and 42 both matched "42".
        parts.append({"attribute": {"name": name, "equals": _as_text(value)}})
    return {"all": parts} if parts else None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def is_flat(segment: dict[str, Any]) -> bool:
    """Whether a stored segment is the flat form: no key of a tree but `kind`, which both
    forms spell the same way and read alike."""
    return set(segment) <= FLAT_KEYS


def as_tree(segment: dict[str, Any] | None) -> Condition | None:
    """A stored segment, flat or a tree, as a tree; None when it narrows nothing."""
    if not segment:
        return None
    tree = from_flat(segment) if is_flat(segment) else segment
    return None if tree is None else Condition.model_validate(tree)


class SavedSegmentIn(Strict):
    """A whole saved segment (PUT)."""

    name: Text255 = Field(description="What staff call it.")
    description: MaybeLongText = Field(None, description="For staff: who it is.")
    conditions: Conditions


class SavedSegmentOut(Out):
    """A saved segment."""

    key: str = Field(description="The segment's key, as campaigns name it (`segment_key`).")
    name: str = Field(description="What staff call it.")
    description: str | None = Field(description="For staff: who it is.")
    conditions: dict[str, Any] = Field(description="Its tree of conditions, as stored.")
    created_by: str = Field(description="Who saved it first: a staff e-mail or a key's name.")
    created_at: dt.datetime = Field(description="When it was created (UTC).")
    updated_at: dt.datetime = Field(description="When it last changed (UTC).")


class SegmentCountIn(Strict):
    """What to count."""

    conditions: Conditions | None = Field(
        None, description="The tree to count; none counts everyone."
    )
    topic: Key | None = Field(
        None, description="Count within this topic's audience (its subscribers) only."
    )


class SampleContact(BaseModel):
    """One contact a segment matches."""

    external_id: str = Field(description="The contact's id.")
    name: str | None = Field(description="The contact's name.")


class SegmentCountOut(BaseModel):
    """How many contacts match, and some of them."""

    count: int = Field(description="Contacts that match now.")
    sample: list[SampleContact] = Field(description="Up to 10 of them, the newest first.")
