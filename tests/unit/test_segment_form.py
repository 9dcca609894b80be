"""The segment editor's flat form and the condition tree: a tree survives the trip through
the form; adding and removing renumber the paths; an error in the tree points at the form
field it is about; a tree reads in words. And the schema's limits, before any database."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from hub.console import segment_form as editor
from hub.console import segment_words
from hub.schemas.segments import Condition, Conditions, as_tree, from_flat

TREE: dict[str, Any] = {
    "all": [
        {"kind": "client"},
        {
            "any": [
                {"attribute": {"name": "plan", "equals": "pro"}},
                {"attribute": {"name": "spent", "min": 100.0, "max": 500.0}},
                {"attribute": {"name": "tags", "in": ["a", "b"]}},
                {"attribute": {"name": "vip", "exists": False}},
            ]
        },
        {"not": {"subscription": {"topic": "news", "channel": "sms"}}},
        {"not": {"any": [{"locale": ["ru", "en-GB"]}, {"timezone": ["Asia/Tokyo"]}]}},
        {"created": {"since": "2025-01-01", "until": "2025-03-31"}},
    ]
}
CHECK: TypeAdapter[Condition] = TypeAdapter(Conditions)


def as_form(root: editor.Node) -> dict[str, str]:
    """What a browser would post for the editor showing `root`."""
    form = {}
    for node in root.walk():
        form[f"{node.path}.type"] = node.type
        form |= {f"{node.path}.{name}": value for name, value in node.values.items() if value}
    return form


def test_a_tree_survives_the_form_both_ways() -> None:
    root = editor.load(TREE)
    assert [n.path for n in root.walk()][:4] == ["r", "r-0", "r-1", "r-1-0"]
    built = editor.build(editor.read(as_form(root)))
    assert built.problems == {}
    assert CHECK.validate_python(built.tree).dump() == CHECK.validate_python(TREE).dump()


def test_adding_and_removing_renumber_the_paths() -> None:
    root = editor.empty()
    assert editor.add(root, "r", "attribute") == "r-0"
    assert editor.add(root, "r", "any") == "r-1"
    assert editor.add(root, "r-1", "kind") == "r-1-0"
    assert editor.add(root, "r-9", "kind") is None  # no such group
    assert editor.add(root, "r-0", "kind") is None  # a condition holds no conditions
    assert editor.add(root, "r", "nonsense") is None
    assert root.remove("r-0")
    root.numbered()
    assert [(n.path, n.type) for n in root.walk()] == [
        ("r", "all"),
        ("r-0", "any"),
        ("r-0-0", "kind"),
    ]
    assert root.find("r-0-0") is not None
    assert root.find("r-0-0").values["value"] == "client"  # type: ignore[union-attr]


def test_groups_nest_no_deeper_than_the_schema_allows() -> None:
    root = editor.empty()
    path = "r"
    for _ in range(4):
        path = editor.add(root, path, "all") or ""
    assert path == "r-0-0-0-0"
    assert editor.add(root, path, "any") is None  # a sixth level
    assert editor.add(root, path, "kind") == f"{path}-0"


def test_empty_groups_are_skipped_and_a_form_only_of_them_counts_everyone() -> None:
    root = editor.empty()
    editor.add(root, "r", "any")
    assert editor.build(root).tree is None
    editor.add(root, "r", "locale")
    built = editor.build(root)
    assert built.problems == {"r-1-value": "Enter at least one language, like ru or en-GB"}


def test_a_forged_form_cannot_break_the_tree() -> None:
    form = {
        "r.type": "any",
        "r-0.type": "kind",
        "r-0.value": "client",
        "r-7-3.type": "kind",  # no parent
        "x-1.type": "kind",  # not a path
        "r-1.type": "evil",
        "r-0-0.type": "kind",  # under a condition
    }
    root = editor.read(form)
    assert [(n.path, n.type) for n in root.walk()] == [("r", "any"), ("r-0", "kind")]


@pytest.mark.parametrize(
    ("tree", "field"),
    [
        ({"all": [{"kind": "client"}, {"attribute": {"name": "a", "min": "x"}}]}, "r-1-from"),
        ({"all": [{"attribute": {"name": "a", "min": 5, "max": 1}}]}, "r-0-from"),
        ({"all": [{"any": [{"locale": ["not a tag"]}]}]}, "r-0-0-value"),
        ({"all": [{"not": {"subscription": {"topic": "n", "channel": "fax"}}}]}, "r-0-0-channel"),
        ({"all": [{"not": {"any": [{"kind": "x"}, {"kind": "robot"}]}}]}, "r-0-0-value"),
        ({"all": [{"created": {"until": "someday"}}]}, "r-0-to"),
    ],
)
def test_an_error_in_the_tree_points_at_its_form_field(tree: dict[str, Any], field: str) -> None:
    built = editor.build(editor.read(_form_of(tree)))
    with pytest.raises(ValidationError) as caught:
        CHECK.validate_python(built.tree)
    error = caught.value.errors()[0]
    assert built.locate(tuple(error["loc"]), error["msg"]) == field


def _form_of(tree: dict[str, Any]) -> dict[str, str]:
    """The form for a tree the schema would refuse, written by hand through the Node model."""

    def node(part: dict[str, Any]) -> editor.Node:
        ((key, value),) = part.items()
        if key in ("all", "any"):
            return editor.Node(key, children=[node(c) for c in value])
        if key == "not":
            inner = value.get("any") if set(value) == {"any"} else [value]
            return editor.Node("not", children=[node(c) for c in inner])
        if key == "attribute":
            op = "number" if "min" in value else "equals"
            return editor.Node(
                key,
                {
                    "name": value["name"],
                    "op": op,
                    "from": str(value.get("min", "")),
                    "to": str(value.get("max", "")),
                },
            )
        if key == "subscription":
            return editor.Node(key, {"topic": value["topic"], "channel": value["channel"]})
        if key == "created":
            return editor.Node(key, {"to": value["until"]})
        return editor.Node(key, {"value": ", ".join(value) if isinstance(value, list) else value})

    return as_form(node(tree).numbered())


def test_a_tree_reads_in_words() -> None:
    assert segment_words.describe(TREE) == (
        "clients and (plan is pro or spent from 100 to 500 or tags is one of a, b or vip is "
        "not set) and not (subscribed to news by sms) and not (language ru or en-GB or in "
        "Asia/Tokyo) and added from 2025-01-01 to 2025-03-31"
    )
    assert segment_words.describe({"attribute": {"name": "d", "since": "2025-01-01"}}) == (
        "d on or after 2025-01-01"
    )
    assert segment_words.describe({"attribute": {"name": "n", "max": 3}}) == "n at most 3"
    assert segment_words.describe(None) == "everyone"


def test_the_flat_form_reads_as_a_tree() -> None:
    flat = {"kind": "client", "locales": ["ru"], "timezones": ["UTC"], "attributes": {"n": 42}}
    assert from_flat(flat) == {
        "all": [
            {"kind": "client"},
            {"locale": ["ru"]},
            {"timezone": ["UTC"]},
            {"attribute": {"name": "n", "equals": "42"}},
        ]
    }
    assert as_tree({}) is None
    assert as_tree({"kind": "employee"}) is not None
    assert as_tree({"any": [{"kind": "client"}]}) is not None


def deep(levels: int) -> dict[str, Any]:
    tree: dict[str, Any] = {"kind": "client"}
    for _ in range(levels):
        tree = {"all": [tree]}
    return tree


def test_the_limits_hold_before_parsing() -> None:
    CHECK.validate_python(deep(5))
    with pytest.raises(ValidationError, match="nest at most 5 deep"):
        CHECK.validate_python(deep(6))
    with pytest.raises(ValidationError, match="nest at most 5 deep"):
        CHECK.validate_python(deep(10_000))  # refused by the walk, not by a recursion limit
    CHECK.validate_python({"any": [{"kind": "client"}] * 50})
    with pytest.raises(ValidationError, match="more than 50 conditions"):
        CHECK.validate_python(
            {"any": [{"kind": "client"}] * 25 + [{"all": [{"kind": "client"}] * 26}]}
        )
