"""The segment editor's form and the condition tree, both ways.

The form is flat, so it works without JavaScript: every node has a path ("r" the top group,
"r-0" its first child, "r-0-2" that one's third) and its fields are named "<path>.<field>".
Reading the form back rebuilds the tree from the paths. A "none of these" group is
`{"not": child}` with one child, `{"not": {"any": [...]}}` with more. Groups left empty are
skipped: they are what someone is still writing.

Errors from the schema come back with a location in the tree; `locate` turns it into the
id of the form field at fault, for the error summary's link and the inline message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hub.schemas.segments import MAX_DEPTH, AttributeTest, Condition

ROOT = "r"
GROUP_KEYS = ("all", "any")
GROUP_TYPES = (
    ("all", "All of these (AND)"),
    ("any", "Any of these (OR)"),
    ("not", "None of these (NOT)"),
)
CONDITION_TYPES = (
    ("attribute", "Attribute"),
    ("subscription", "Subscription"),
    ("locale", "Language"),
    ("timezone", "Time zone"),
    ("kind", "Kind (client or employee)"),
    ("created", "Date added"),
)
OPERATORS = (
    ("equals", "is"),
    ("not_equals", "is not"),
    ("in", "is one of"),
    ("contains", "contains the text"),
    ("exists", "is set"),
    ("missing", "is not set"),
    ("number", "is a number from … to"),
    ("date", "is a date from … to"),
)
FIELDS = ("value", "op", "name", "topic", "channel", "from", "to")
_NEEDS_VALUE = {"equals", "not_equals", "in", "contains"}
# What a new condition's controls show first, so the form and the tree agree at once.
_DEFAULTS = {"kind": {"value": "client"}, "attribute": {"op": "equals"}}


@dataclass
class Node:
    """One node of the editor: a group with children, or a condition with its raw fields."""

    type: str
    values: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    path: str = ROOT

    def __post_init__(self) -> None:
        self.values = {f: self.values.get(f, "") for f in FIELDS}

    @property
    def is_group(self) -> bool:
        return self.type in ("all", "any", "not")

    @property
    def depth(self) -> int:
        """1 for the top group."""
        return self.path.count("-") + 1

    @property
    def may_nest(self) -> bool:
        return self.depth < MAX_DEPTH

    def numbered(self, path: str = ROOT) -> Node:
        """Paths from the node's place in the tree, after an add or a remove."""
        self.path = path
        for i, child in enumerate(self.children):
            child.numbered(f"{path}-{i}")
        return self

    def find(self, path: str) -> Node | None:
        if self.path == path:
            return self
        for child in self.children:
            found = child.find(path)
            if found is not None:
                return found
        return None

    def remove(self, path: str) -> bool:
        for i, child in enumerate(self.children):
            if child.path == path:
                del self.children[i]
                return True
            if child.remove(path):
                return True
        return False

    def walk(self) -> list[Node]:
        return [self, *(n for child in self.children for n in child.walk())]


def empty() -> Node:
    return Node("all")


# -- the form -------------------------------------------------------------------------------

_PATH = re.compile(r"^r(-[0-9]{1,3}){0,8}$")


def read(form: dict[str, str]) -> Node:
    """The editor's tree as posted. Unknown or malformed paths are ignored."""
    types = {
        name[: -len(".type")]: value
        for name, value in form.items()
        if name.endswith(".type") and _PATH.match(name[: -len(".type")])
    }
    nodes: dict[str, Node] = {}
    for path, kind in types.items():
        if kind not in dict(GROUP_TYPES) and kind not in dict(CONDITION_TYPES):
            continue
        values = {f: form.get(f"{path}.{f}", "").strip() for f in FIELDS}
        nodes[path] = Node(kind, values, path=path)
    root = nodes.get(ROOT)
    if root is None or not root.is_group:
        root = empty()
        nodes[ROOT] = root
    # Children in the order their last number gives; a node whose parent is missing (or
    # not a group) is dropped.
    for path in sorted(nodes, key=lambda p: [int(n) for n in p.split("-")[1:]]):
        if path == ROOT:
            continue
        parent = nodes.get(path.rsplit("-", 1)[0])
        if parent is not None and parent.is_group and _reaches_root(path, nodes):
            parent.children.append(nodes[path])
    return root.numbered()


def _reaches_root(path: str, nodes: dict[str, Node]) -> bool:
    while path != ROOT:
        path = path.rsplit("-", 1)[0]
        if path not in nodes or not nodes[path].is_group:
            return False
    return True


def add(root: Node, path: str, kind: str) -> str | None:
    """Add a condition or an empty group of `kind` to the group at `path`; the new node's
    path, or None when there is no such group (or it may not nest another)."""
    group = root.find(path)
    if group is None or not group.is_group:
        return None
    if kind in dict(GROUP_TYPES):
        if not group.may_nest:
            return None
    elif kind not in dict(CONDITION_TYPES):
        return None
    group.children.append(Node(kind, dict(_DEFAULTS.get(kind, {}))))
    root.numbered()
    return group.children[-1].path


# -- form to tree ---------------------------------------------------------------------------

Loc = tuple[str | int, ...]


@dataclass
class Built:
    """The tree a form makes (None: no condition yet), where each tree node came from, and
    what was wrong before the schema saw it: field id -> message."""

    tree: dict[str, Any] | None
    places: dict[Loc, str]
    problems: dict[str, str]
    groups: frozenset[str]

    def locate(self, loc: Loc, message: str = "") -> str:
        """The form field id an error at `loc` (within the conditions) belongs to."""
        return locate(loc, self.places, self.groups, message)


def build(root: Node) -> Built:
    places: dict[Loc, str] = {}
    problems: dict[str, str] = {}
    tree = _tree(root, (), places, problems)
    groups = frozenset(node.path for node in root.walk() if node.is_group)
    return Built(tree, places, problems, groups)


def _tree(
    node: Node, loc: Loc, places: dict[Loc, str], problems: dict[str, str]
) -> dict[str, Any] | None:
    places[loc] = node.path
    if not node.is_group:
        return _condition(node, problems)
    if node.type == "not":
        if len(node.children) == 1:
            inner = _tree(node.children[0], (*loc, "not"), places, problems)
            return None if inner is None else {"not": inner}
        places[(*loc, "not")] = node.path
        children = _children(node, (*loc, "not", "any"), places, problems)
        return {"not": {"any": children}} if children else None
    children = _children(node, (*loc, node.type), places, problems)
    return {node.type: children} if children else None


def _children(
    node: Node, loc: Loc, places: dict[Loc, str], problems: dict[str, str]
) -> list[dict[str, Any]]:
    built: list[dict[str, Any]] = []
    for child in node.children:
        tree = _tree(child, (*loc, len(built)), places, problems)
        if tree is not None:
            built.append(tree)
    return built


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _condition(node: Node, problems: dict[str, str]) -> dict[str, Any]:
    v = node.values
    ident = node.path
    if node.type == "kind":
        return {"kind": v["value"] or None}
    if node.type in ("locale", "timezone"):
        if not _split(v["value"]):
            problems[f"{ident}-value"] = (
                "Enter at least one language, like ru or en-GB"
                if node.type == "locale"
                else "Enter at least one time zone, like Europe/Moscow"
            )
        return {node.type: _split(v["value"])}
    if node.type == "subscription":
        if not v["topic"]:
            problems[f"{ident}-topic"] = "Choose a topic"
        test = {"topic": v["topic"]} | ({"channel": v["channel"]} if v["channel"] else {})
        return {"subscription": test}
    if node.type == "created":
        if not v["from"] and not v["to"]:
            problems[f"{ident}-from"] = "Enter a first or a last day, or both"
        return {"created": _range(v, "since", "until")}
    return {"attribute": _attribute(node, problems)}


def _attribute(node: Node, problems: dict[str, str]) -> dict[str, Any]:
    v = node.values
    ident = node.path
    op = v["op"] or "equals"
    if not v["name"]:
        problems[f"{ident}-name"] = "Enter the attribute's name, like plan"
    test: dict[str, Any] = {"name": v["name"]}
    if op in _NEEDS_VALUE and not v["value"]:
        problems[f"{ident}-value"] = "Enter a value to compare with"
    if op in ("number", "date") and not v["from"] and not v["to"]:
        problems[f"{ident}-from"] = "Enter where the range starts or ends, or both"
    if op == "in":
        test["in"] = _split(v["value"])
    elif op in ("equals", "not_equals", "contains"):
        test[op] = v["value"]
    elif op in ("exists", "missing"):
        test["exists"] = op == "exists"
    elif op == "number":
        test |= _range(v, "min", "max")
    elif op == "date":
        test |= _range(v, "since", "until")
    else:
        problems[f"{ident}-op"] = "Choose how to compare"
    return test


def _range(values: dict[str, str], low: str, high: str) -> dict[str, Any]:
    return {name: values[edge] for name, edge in ((low, "from"), (high, "to")) if values[edge]}


# -- tree to form ---------------------------------------------------------------------------


def load(conditions: dict[str, Any] | None) -> Node:
    """The editor's tree for stored conditions (always a group at the top)."""
    if not conditions:
        return empty()
    node = _node(Condition.model_validate(conditions))
    return (node if node.type in GROUP_KEYS else Node("all", children=[node])).numbered()


def _node(tree: Condition) -> Node:
    key = tree.key
    if key in GROUP_KEYS:
        return Node(key, children=[_node(c) for c in getattr(tree, f"{key}_")])
    if key == "not":
        inner = tree.not_
        assert inner is not None
        if inner.any_ is not None:
            return Node("not", children=[_node(c) for c in inner.any_])
        return Node("not", children=[_node(inner)])
    return Node(key, _values(tree))


def _values(tree: Condition) -> dict[str, str]:
    if tree.kind is not None:
        return {"value": tree.kind.value}
    if tree.locale is not None:
        return {"value": ", ".join(tree.locale)}
    if tree.timezone is not None:
        return {"value": ", ".join(tree.timezone)}
    if tree.subscription is not None:
        channel = tree.subscription.channel
        return {"topic": tree.subscription.topic, "channel": channel.value if channel else ""}
    if tree.created is not None:
        return {"from": as_text(tree.created.since), "to": as_text(tree.created.until)}
    assert tree.attribute is not None
    return attribute_values(tree.attribute)


def attribute_values(test: AttributeTest) -> dict[str, str]:
    values = {"name": test.name, "op": test.test}
    kind = test.test
    if kind == "exists":
        values["op"] = "exists" if test.exists else "missing"
    elif kind == "in":
        values["value"] = ", ".join(as_text(v) for v in test.in_ or ())
    elif kind in ("equals", "not_equals", "contains"):
        values["value"] = as_text(getattr(test, kind))
    elif kind == "number":
        values |= {"from": as_text(test.min), "to": as_text(test.max)}
    else:
        values |= {"from": as_text(test.since), "to": as_text(test.until)}
    return values


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# -- where an error belongs -----------------------------------------------------------------

# A condition's field in the tree -> its field in the form.
_FIELD = {
    "kind": "value",
    "locale": "value",
    "timezone": "value",
    "topic": "topic",
    "channel": "channel",
    "name": "name",
    "equals": "value",
    "not_equals": "value",
    "in": "value",
    "contains": "value",
    "exists": "op",
    "min": "from",
    "since": "from",
    "max": "to",
    "until": "to",
}
_LOC_PART = re.compile(r"([A-Za-z_]+)|\[([0-9]+)\]")


def parse_loc(text: str) -> Loc:
    """ "all[0].subscription.topic" -> ("all", 0, "subscription", "topic")."""
    return tuple(int(i) if i else name for name, i in _LOC_PART.findall(text))


def locate(loc: Loc, places: dict[Loc, str], groups: frozenset[str], message: str = "") -> str:
    """The form field id an error at `loc` (within the conditions) belongs to: a group's
    own errors go to its "add a condition" control."""
    cut = next((n for n in range(len(loc), -1, -1) if loc[:n] in places), None)
    if cut is None:
        return f"{ROOT}-add"
    path = places[loc[:cut]]
    names = [part for part in loc[cut:] if isinstance(part, str)]
    if path in groups:
        field = "add"
    elif len(names) > 1 and names[-1] in _FIELD:
        field = _FIELD[names[-1]]
    elif names and names[0] == "subscription":
        field = "topic"
    elif "comes after" in message:  # a range the wrong way round
        field = "from"
    else:
        field = "value"
    return f"{path}-{field}"
