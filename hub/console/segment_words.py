"""A condition tree in words, for the segment list and the campaign page: "clients and (plan
is pro or language ru)"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub.console.segment_form import GROUP_KEYS, OPERATORS, as_text, attribute_values
from hub.schemas.segments import AttributeTest, Condition


def describe(conditions: dict[str, Any] | None) -> str:
    """A stored tree in words, for lists and the campaign page."""
    if not conditions:
        return "everyone"
    return _words(Condition.model_validate(conditions), top=True)


def _words(node: Condition, *, top: bool = False) -> str:
    key = node.key
    if key in GROUP_KEYS:
        children: list[Condition] = getattr(node, f"{key}_")
        joined = f" {'and' if key == 'all' else 'or'} ".join(_words(c) for c in children)
        return joined if top or len(children) == 1 else f"({joined})"
    if node.not_ is not None:
        inner = _words(node.not_)
        return f"not {inner}" if inner.startswith("(") else f"not ({inner})"
    return _CONDITION_WORDS[key](getattr(node, key))


def _attribute_words(test: AttributeTest) -> str:
    values = attribute_values(test)
    words = dict(OPERATORS)
    op = values["op"]
    if op in ("number", "date"):
        span = _span(values.get("from", ""), values.get("to", ""), dates=op == "date")
        return f"{test.name} {span}"
    if op in ("exists", "missing"):
        return f"{test.name} {words[op]}"
    return f"{test.name} {words[op]} {values.get('value', '')}"


def _span(low: str, high: str, *, dates: bool) -> str:
    if low and high:
        return f"from {low} to {high}"
    if dates:
        return f"on or after {low}" if low else f"on or before {high}"
    return f"at least {low}" if low else f"at most {high}"


_CONDITION_WORDS: dict[str, Callable[[Any], str]] = {
    "kind": lambda kind: f"{kind.value}s",
    "locale": lambda tags: "language " + " or ".join(tags),
    "timezone": lambda zones: "in " + " or ".join(zones),
    "subscription": lambda test: (
        f"subscribed to {test.topic}" + (f" by {test.channel.value}" if test.channel else "")
    ),
    "created": lambda test: "added " + _span(as_text(test.since), as_text(test.until), dates=True),
    "attribute": _attribute_words,
}
