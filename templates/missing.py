"""A value a template reads that is not there, said in plain words, once for every place a
render error is shown (the dry run, a refused schedule, a test send, a delivery's error, the
editor's preview).

Jinja says `'dict object' has no attribute 'offer'`: true, but it names neither the dict nor
where to fix it. While a template renders, the values it was given are known (`naming`), so
the missing value's owner is found among them by identity and named: "the data has no
'offer'", "Ada Lovelace's attributes have no 'plan'". Field paths lose their stray double dot
too: the default variant's key is the empty string, so "variants..email_html" is spelt
"variants.default.email_html" in words (never in a `field` a client matches on).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined
from jinja2.utils import missing

DATA = "the data"  # how a message names `data`; a campaign's pages say "the campaign's data"
SEARCHED = 2000  # values looked at to find a missing value's owner: bounded for huge data
LISTED = 6  # keys named after "(it has ...)", so a typo is seen at once
VISIBLE = "contact, topic, data, links and locale"
_KEYS = {
    "contact": "external_id, name, locale, timezone and attributes",
    "topic": "key and name",
    "links": "preferences_url and unsubscribe_url",
}


@dataclass
class _Render:
    """The values of the render under way, and the path of the last missing value named."""

    variables: Mapping[str, Any]
    missing: str | None = None
    said: str | None = None


_RENDER: ContextVar[_Render | None] = ContextVar("hub_template_render", default=None)


@contextlib.contextmanager
def naming(variables: Mapping[str, Any]) -> Iterator[None]:
    """While a template renders with `variables`: missing values are named from them."""
    token = _RENDER.set(_Render(variables))
    try:
        yield
    finally:
        _RENDER.reset(token)


def missing_path(message: str) -> str | None:
    """The path of the missing value a render just failed on ("data.offer"), when `message`
    is what this module said of it; None for any other failure."""
    render = _RENDER.get()
    if render is None or render.said != message:
        return None
    return render.missing


class PlainUndefined(StrictUndefined):
    """Jinja's strict undefined, with a message a marketer reads: what is missing, from what."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:  # the sandbox's own words ("access to attribute ... unsafe")
            return self._undefined_hint
        name = self._undefined_name
        render = _RENDER.get()
        path: str | None
        if self._undefined_obj is missing:
            said, path = f"there is no {name!r}: a template reads {VISIBLE}", str(name)
        else:
            owner = _owner(render.variables, self._undefined_obj) if render else None
            said = _words(owner, self._undefined_obj, name, render)
            path = None if owner is None else _step(owner, name)
        if render is not None:
            render.said, render.missing = said, path
        return said


def _owner(variables: Mapping[str, Any], target: Any) -> str | None:
    """The path of `target` among the render's values ("data", "contact.attributes",
    "data.items[0]"), found by identity, breadth first, looking at SEARCHED values at most."""
    queue: deque[tuple[str, Any]] = deque(variables.items())
    for _ in range(SEARCHED):
        if not queue:
            return None
        path, value = queue.popleft()
        if value is target:
            return path
        if isinstance(value, Mapping):
            queue.extend((_step(path, key), item) for key, item in value.items())
        elif isinstance(value, list | tuple):
            queue.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return None


def _step(path: str, key: Any) -> str:
    """ "data" and "offer" -> "data.offer"; an item: "data.items[0]", "data['two words']"."""
    return f"{path}.{key}" if isinstance(key, str) and key.isidentifier() else f"{path}[{key!r}]"


def _words(owner: str | None, value: Any, name: Any, render: _Render | None) -> str:
    """ "the data has no 'offer' (it has discount)", "Ada's attributes have no 'plan'"."""
    what = f"{name!r}" if isinstance(name, str) else f"item {name!r}"
    if owner == "contact.attributes":
        contact = render.variables.get("contact") if render else None
        return f"{_whose(contact)} attributes have no {what}{_has(value, 'they have')}"
    if owner in _KEYS:
        verb, they = ("have", "they have") if owner == "links" else ("has", "it has")
        return f"the {owner} {verb} no {what} ({they} {_KEYS[owner]})"
    if owner is None:
        subject = f"this {_kind(value)}"
    elif owner == "data":
        subject = DATA
    elif isinstance(value, Mapping):
        subject = owner
    else:  # "data.offer is text, which has no 'price'"
        subject = f"{owner} is {_kind(value, article=True)}, which"
    return f"{subject} has no {what}{_has(value)}"


def _has(value: Any, they: str = "it has") -> str:
    """What a mapping does have, after what it lacks: a typo is then seen at once."""
    if not isinstance(value, Mapping) or not value:
        return ""
    keys = sorted(str(k) for k in value)
    more = f" and {len(keys) - LISTED} more" if len(keys) > LISTED else ""
    return f" ({they} {', '.join(keys[:LISTED])}{more})"


def _whose(contact: Any) -> str:
    """ "Ada Lovelace's", or "the contact's" for one without a name (or named by an address)."""
    name = contact.get("name") if isinstance(contact, Mapping) else None
    if not isinstance(name, str) or not name.strip() or "@" in name:
        return "the contact's"
    name = " ".join(name.split())
    if len(name) > 40:
        name = name.split()[0][:40]
    return f"{name}'s" if not name.endswith("s") else f"{name}'"


def _kind(value: Any, *, article: bool = False) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}" if article else "list"
    if isinstance(value, Mapping):
        return "a mapping" if article else "mapping"
    if isinstance(value, bool | int | float):
        return "a number" if article else "number"
    return "a value" if article else "value"


def spelt(field: str) -> str:
    """A field path as words show it: the default variant's empty key named, so
    "variants..email_html" reads "variants.default.email_html"."""
    head, dots, tail = field.partition("..")
    if dots:
        return f"{head}.default.{tail}"
    return f"{field}default" if field.endswith(".") else field
