"""A segment as SQL: which contacts a condition tree (hub.schemas.segments) matches, on
SQLite and PostgreSQL alike.

Every condition is two-valued (true or false, never NULL), so `not` is the exact complement:
"plan is not pro" takes the people with no plan. Attributes are read from the JSON column by
small constructs compiled per dialect: as text (strings as written, numbers and true/false
as JSON writes them), as a number (a JSON number, or a string that is one, like "42" from a
CSV import; anything else is no number and falls in no range, without a cast error), or as a
date (a string starting YYYY-MM-DD).

Stored campaigns may hold the older flat form; `conditions` reads both. An A/B arm's
notification wraps its campaign's segment with a bucket range (`with_bucket`): the people
whose stable bucket for that campaign falls in it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Numeric,
    String,
    and_,
    cast,
    exists,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from hub.db.models import Contact, Subscription, Topic
from hub.domain import SubscriptionStatus
from hub.schemas.segments import (
    GROUPS,
    AttributeTest,
    Condition,
    DateRange,
    SubscriptionTest,
    as_tree,
)

BUCKETS = 10_000  # a person's bucket is 0..9999: a share of 1 % is 100 buckets
_PRIME = 2_147_483_647  # 2**31 - 1: a product of two numbers below it fits a BIGINT


def conditions(segment: dict[str, Any] | None) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a stored segment (a tree, the flat form, or either wrapped with
    a bucket range); [] for everyone."""
    if segment and "bucket" in segment:
        span = segment["bucket"]
        within = in_bucket(seed=int(span["seed"]), low=int(span["from"]), high=int(span["to"]))
        return [*conditions(segment.get("segment")), within]
    tree = as_tree(segment)
    return [] if tree is None else [predicate(tree)]


def with_bucket(
    segment: dict[str, Any] | None, *, seed: int, low: int, high: int
) -> dict[str, Any]:
    """`segment` narrowed to the people whose bucket for `seed` is in [low, high)."""
    return {"bucket": {"seed": seed, "from": low, "to": high}, "segment": segment}


@functools.lru_cache(maxsize=256)
def _keys(seed: int) -> tuple[int, int]:
    """The multiplier (never 0) and offset of a seed's bucket function: drawn from a hash of
    the seed, so two campaigns split the same people differently."""
    digest = hashlib.sha256(f"hub-ab:{seed}".encode()).digest()
    multiplier = 1 + int.from_bytes(digest[:8], "big") % (_PRIME - 1)
    return multiplier, int.from_bytes(digest[8:16], "big") % _PRIME


def bucket_of(*, seed: int, contact_id: int) -> int:
    """A person's bucket (0..9999) for a seed (a campaign's id): what `in_bucket` computes in
    SQL, so tests and pages can say who is where without the database."""
    multiplier, offset = _keys(seed)
    return ((contact_id % _PRIME) * multiplier + offset) % _PRIME % BUCKETS


def in_bucket(*, seed: int, low: int, high: int) -> ColumnElement[bool]:
    """Whether a contact's bucket for `seed` is in [low, high). Integer arithmetic only, the
    same on SQLite and PostgreSQL: (id mod p) * m + o stays below 2**62, within BIGINT
    (the id is cast: PostgreSQL would overflow a 32-bit integer's product)."""
    multiplier, offset = _keys(seed)
    person = cast(Contact.id, BigInteger) % _PRIME
    bucket = (person * multiplier + offset) % _PRIME % BUCKETS
    return and_(bucket >= low, bucket < high)


def predicate(node: Condition) -> ColumnElement[bool]:
    """One node as a boolean SQL expression over `Contact`."""
    key = node.key
    return _NODES[key](getattr(node, f"{key}_" if key in GROUPS else key))


def _locale(tags: list[str]) -> ColumnElement[bool]:
    return and_(
        Contact.locale.is_not(None),
        or_(*(or_(Contact.locale == tag, Contact.locale.like(f"{tag}-%")) for tag in tags)),
    )


def _subscribed(test: SubscriptionTest) -> ColumnElement[bool]:
    # Aliased: the audience query may select from subscriptions itself, and this subquery
    # must not correlate to that.
    row = aliased(Subscription)
    query = select(row.id).where(
        row.contact_id == Contact.id,
        row.status == SubscriptionStatus.SUBSCRIBED,
        row.topic_id == select(Topic.id).where(Topic.key == test.topic).scalar_subquery(),
    )
    if test.channel is not None:
        query = query.where(json_list_has(row.channels, literal(test.channel.value, String)))
    return exists(query)


def _created(test: DateRange) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    if test.since is not None:
        clauses.append(Contact.created_at >= _midnight(test.since))
    if test.until is not None:
        clauses.append(Contact.created_at < _midnight(test.until + dt.timedelta(days=1)))
    return and_(*clauses)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _attribute(test: AttributeTest) -> ColumnElement[bool]:
    return _ATTRIBUTE_TESTS[test.test](test, literal(test.name, String))


def _exists(test: AttributeTest, name: ColumnElement[str]) -> ColumnElement[bool]:
    present = attribute_present(Contact.attributes, name)
    return present if test.exists else not_(present)


def _contains(test: AttributeTest, name: ColumnElement[str]) -> ColumnElement[bool]:
    text = attribute_text(Contact.attributes, name)
    return and_(text.is_not(None), text_contains(text, literal(test.contains, String)))


def _number_range(test: AttributeTest, name: ColumnElement[str]) -> ColumnElement[bool]:
    number = attribute_number(Contact.attributes, name)
    clauses: list[ColumnElement[bool]] = [number.is_not(None)]
    if test.min is not None:
        clauses.append(number >= _decimal(test.min))
    if test.max is not None:
        clauses.append(number <= _decimal(test.max))
    return and_(*clauses)


def _date_range(test: AttributeTest, name: ColumnElement[str]) -> ColumnElement[bool]:
    day = attribute_date(Contact.attributes, name)
    clauses: list[ColumnElement[bool]] = [day.is_not(None)]
    if test.since is not None:
        clauses.append(day >= test.since.isoformat())
    if test.until is not None:
        clauses.append(day <= test.until.isoformat())
    return and_(*clauses)


def _equals(name: ColumnElement[str], value: Any) -> ColumnElement[bool]:
    """A number given compares as a number (42 equals 42.0 and "42"); text as text; true and
    false as JSON writes them (so the string "true" equals true too)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = attribute_number(Contact.attributes, name)
        return and_(number.is_not(None), number == _decimal(value))
    text = attribute_text(Contact.attributes, name)
    wanted = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return and_(text.is_not(None), text == wanted)


def _decimal(value: float) -> ColumnElement[Decimal]:
    # Numeric, not float: PostgreSQL compares exactly, and a huge integer in an attribute
    # would overflow a double.
    return literal(Decimal(repr(value)) if isinstance(value, float) else Decimal(value), Numeric())


_NODES: dict[str, Callable[[Any], ColumnElement[bool]]] = {
    "all": lambda children: and_(*(predicate(child) for child in children)),
    "any": lambda children: or_(*(predicate(child) for child in children)),
    "not": lambda child: not_(predicate(child)),
    "kind": lambda kind: Contact.kind == kind,
    "locale": _locale,
    "timezone": Contact.timezone.in_,
    "subscription": _subscribed,
    "attribute": _attribute,
    "created": _created,
}
_ATTRIBUTE_TESTS: dict[str, Callable[[AttributeTest, ColumnElement[str]], ColumnElement[bool]]] = {
    "equals": lambda test, name: _equals(name, test.equals),
    "not_equals": lambda test, name: not_(_equals(name, test.not_equals)),
    "in": lambda test, name: or_(*(_equals(name, value) for value in test.in_ or ())),
    "contains": _contains,
    "exists": _exists,
    "number": _number_range,
    "date": _date_range,
}


# -- constructs compiled per dialect --------------------------------------------------------
#
# Each takes the JSON column and the attribute's name (a bound parameter). SQLite reads it
# at the path $."name" (the schema refuses `"` and `\` in names); PostgreSQL with `->`.


class attribute_text(FunctionElement[str]):
    """The attribute as text, NULL when missing, null, an object or a list."""

    type = String()
    inherit_cache = True
    name = "attribute_text"


class attribute_number(FunctionElement[Decimal]):
    """The attribute as a number, NULL when it is not one."""

    type = Numeric()
    inherit_cache = True
    name = "attribute_number"


class attribute_date(FunctionElement[str]):
    """The attribute's YYYY-MM-DD prefix, NULL when it does not start with a date."""

    type = String()
    inherit_cache = True
    name = "attribute_date"


class attribute_present(FunctionElement[bool]):
    """Whether the attribute is there and not null."""

    inherit_cache = True
    name = "attribute_present"


class json_list_has(FunctionElement[bool]):
    """Whether a JSON list column holds this string."""

    inherit_cache = True
    name = "json_list_has"


class text_contains(FunctionElement[bool]):
    """Whether text holds the other, ignoring case."""

    inherit_cache = True
    name = "text_contains"


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses.clauses]


# SQLite: json_type names the value's type ('text', 'integer', 'real', 'true', 'false',
# 'null', 'object', 'array'; NULL when missing) and json_extract reads it.


def _sqlite(column: str, name: str) -> tuple[str, str]:
    path = f"""('$."' || {name} || '"')"""
    return f"json_type({column}, {path})", f"json_extract({column}, {path})"


@compiles(attribute_text, "sqlite")
def _text_sqlite(element: attribute_text, compiler: SQLCompiler, **kw: Any) -> str:
    kind, value = _sqlite(*_args(element, compiler, **kw))
    return (
        f"(CASE {kind} WHEN 'text' THEN {value} WHEN 'integer' THEN CAST({value} AS TEXT) "
        f"WHEN 'real' THEN CAST({value} AS TEXT) WHEN 'true' THEN 'true' "
        f"WHEN 'false' THEN 'false' END)"
    )


@compiles(attribute_number, "sqlite")
def _number_sqlite(element: attribute_number, compiler: SQLCompiler, **kw: Any) -> str:
    kind, value = _sqlite(*_args(element, compiler, **kw))
    # A decimal written as text: an optional sign, digits with at most one point. GLOB has no
    # repetition, so: something left after the sign, only digits and points, a digit, and
    # not two points.
    unsigned = (
        f"(CASE WHEN substr(trim({value}), 1, 1) IN ('-', '+') "
        f"THEN substr(trim({value}), 2) ELSE trim({value}) END)"
    )
    decimal_text = (
        f"{unsigned} <> '' AND {unsigned} NOT GLOB '*[^0-9.]*' "
        f"AND {unsigned} GLOB '*[0-9]*' AND {unsigned} NOT GLOB '*.*.*'"
    )
    return (
        f"(CASE WHEN {kind} IN ('integer', 'real') THEN {value} "
        f"WHEN {kind} = 'text' AND {decimal_text} THEN CAST(trim({value}) AS REAL) END)"
    )


@compiles(attribute_date, "sqlite")
def _date_sqlite(element: attribute_date, compiler: SQLCompiler, **kw: Any) -> str:
    kind, value = _sqlite(*_args(element, compiler, **kw))
    return (
        f"(CASE WHEN {kind} = 'text' "
        f"AND substr({value}, 1, 10) GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' "
        f"AND (length({value}) = 10 OR substr({value}, 11, 1) IN ('T', 't', ' ')) "
        f"THEN substr({value}, 1, 10) END)"
    )


@compiles(attribute_present, "sqlite")
def _present_sqlite(element: attribute_present, compiler: SQLCompiler, **kw: Any) -> str:
    kind, _ = _sqlite(*_args(element, compiler, **kw))
    return f"(coalesce({kind}, 'null') <> 'null')"


@compiles(json_list_has, "sqlite")
def _list_has_sqlite(element: json_list_has, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = _args(element, compiler, **kw)
    return f"EXISTS (SELECT 1 FROM json_each({column}) AS item WHERE item.value = {value})"  # noqa: S608 - compiled clauses


@compiles(text_contains, "sqlite")
def _contains_sqlite(element: text_contains, compiler: SQLCompiler, **kw: Any) -> str:
    text, part = _args(element, compiler, **kw)
    return f"(instr(lower({text}), lower({part})) > 0)"


# PostgreSQL: the column is JSONB; jsonb_typeof names the type ('string', 'number',
# 'boolean', 'null', 'object', 'array'; NULL when missing) and ->> reads a scalar as text.
# CASE evaluates the cast only for the rows its condition lets through.


def _postgres(column: str, name: str) -> tuple[str, str]:
    key = f"CAST({name} AS TEXT)"
    return f"jsonb_typeof({column} -> {key})", f"({column} ->> {key})"


@compiles(attribute_text, "postgresql")
def _text_postgres(element: attribute_text, compiler: SQLCompiler, **kw: Any) -> str:
    kind, value = _postgres(*_args(element, compiler, **kw))
    return f"(CASE WHEN {kind} IN ('string', 'number', 'boolean') THEN {value} END)"


@compiles(attribute_number, "postgresql")
def _number_postgres(element: attribute_number, compiler: SQLCompiler, **kw: Any) -> str:
    kind, value = _postgres(*_args(element, compiler, **kw))
    return (
        f"(CASE WHEN {kind} = 'number' THEN CAST({value} AS NUMERIC) "
        f"WHEN {kind} = 'string' AND btrim({value}) ~ '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)$' "
        f"THEN CAST(btrim({value}) AS NUMERIC) END)"
    )


@compiles(attribute_date, "postgresql")
def _date_postgres(element: attribute_date, compiler: SQLCompiler, **kw: Any) -> str:
    kind, value = _postgres(*_args(element, compiler, **kw))
    return (
        f"(CASE WHEN {kind} = 'string' AND {value} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}([Tt ]|$)' "
        f"THEN substr({value}, 1, 10) END)"
    )


@compiles(attribute_present, "postgresql")
def _present_postgres(element: attribute_present, compiler: SQLCompiler, **kw: Any) -> str:
    kind, _ = _postgres(*_args(element, compiler, **kw))
    return f"(coalesce({kind}, 'null') <> 'null')"


@compiles(json_list_has, "postgresql")
def _list_has_postgres(element: json_list_has, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = _args(element, compiler, **kw)
    return f"({column} @> jsonb_build_array(CAST({value} AS TEXT)))"


@compiles(text_contains, "postgresql")
def _contains_postgres(element: text_contains, compiler: SQLCompiler, **kw: Any) -> str:
    text, part = _args(element, compiler, **kw)
    return f"(strpos(lower({text}), lower(CAST({part} AS TEXT))) > 0)"
