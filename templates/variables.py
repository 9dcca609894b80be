"""The variables a template reads, as paths (`data.order.number`), and their values in a
context: what the console lists beside a preview, so a marketer sees what data it expects.

Found by parsing each part, never by running it: `jinja2.meta` names the variables a part
does not set itself, and a walk of the same tree follows each one's attribute and constant
item lookups (`data.order["number"]`, `data.items[0]`) to the longest path written. A method
call (`data.name.upper()`) keeps the path of the value it is called on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import fields
from typing import Any

import jinja2
from jinja2 import meta, nodes

from hub.templates.model import Parts, TemplateDoc

SHOWN_CHARS = 200  # of a value, in the list


def used(doc: TemplateDoc) -> list[str]:
    """Every variable path any part of any variant reads, sorted. A part that does not parse
    is skipped (the preview names its error)."""
    environment = jinja2.Environment(autoescape=True)  # parses only: nothing compiled or run
    found: set[str] = set()
    for parts in doc.variants.values():
        for source in _sources(parts):
            try:
                tree = environment.parse(source)
                free = meta.find_undeclared_variables(tree)
                found.update(path for path in _paths(tree) if _root(path) in free)
            except (jinja2.TemplateSyntaxError, RecursionError):
                continue
    return sorted(found, key=_order)


def lookup(context: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """(True, value) when `path` leads somewhere in `context`, else (False, None)."""
    value: Any = context
    for step in _steps(path):
        if isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value):
            value = value[step]
        elif isinstance(value, Mapping) and str(step) in value:
            value = value[str(step)]
        else:
            return False, None
    return True, value


def shown(value: Any) -> str:
    """A value as the list shows it: text as it is, anything else as JSON, cut short."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _sources(parts: Parts) -> Iterator[str]:
    for field in fields(parts):
        value = getattr(parts, field.name)
        yield from _strings(value)


def _strings(value: Any) -> Iterator[str]:
    """The template strings of a part: itself, or each string leaf of the webhook JSON."""
    if isinstance(value, str):
        if "{" in value:
            yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _paths(tree: nodes.Template) -> Iterator[str]:
    """The longest lookup chain at each use of a name: `a.b.c` once, not `a`, `a.b` too."""
    inner: set[int] = set()  # lookups that are part of a longer chain
    calls = {id(call.node) for call in tree.find_all(nodes.Call)}
    for chained in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(chained, nodes.Getattr | nodes.Getitem)
        inner.add(id(chained.node))
    for node in tree.find_all((nodes.Name, nodes.Getattr, nodes.Getitem)):
        if id(node) in inner or (isinstance(node, nodes.Name) and node.ctx != "load"):
            continue
        path = _path(node, called=id(node) in calls)
        if path:
            yield path


def _path(node: nodes.Node, *, called: bool) -> str | None:
    """`data.order.number` for a chain that starts at a name; the method a call names is
    dropped; a lookup by a computed key ends the path before it."""
    steps: list[str] = []
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        if isinstance(node, nodes.Getattr):
            steps.append(f".{node.attr}")
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str | int):
            key = node.arg.value
            steps.append(f"[{key}]" if isinstance(key, int) else f".{key}")
        else:
            steps.clear()  # x[y]: the path is known only up to x
        node = node.node
    if not isinstance(node, nodes.Name):
        return None
    if called and steps:
        steps.pop(0)  # the method's own name
    return node.name + "".join(reversed(steps))


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for piece in path.replace("[", ".[").split("."):
        if piece.startswith("[") and piece.endswith("]") and piece[1:-1].lstrip("-").isdigit():
            steps.append(int(piece[1:-1]))
        elif piece:
            steps.append(piece)
    return steps


def _root(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


_FIRST = {"contact": 0, "data": 1, "topic": 2, "links": 3, "locale": 4}


def _order(path: str) -> tuple[int, str]:
    return _FIRST.get(_root(path), 5), path
