"""The variables a template reads, found by parsing it, and what changed between two versions
of one, part by part and line by line."""

from __future__ import annotations

from hub.templates import Parts, TemplateDoc
from hub.templates.diff import Change, PartChange, changed, compare, texts
from hub.templates.variables import lookup, shown, used


def test_the_variables_are_the_paths_a_template_reads() -> None:
    doc = TemplateDoc(
        "order",
        {
            "": Parts(
                email_subject="Order {{ data.order['number'] }} for {{ contact.name|upper }}",
                email_html=(
                    "{% for item in data.items %}{{ item.title }} {{ loop.index }}{% endfor %}"
                    "{{ data.lines[0].sku }} {{ data.note.strip() }} {{ data.by[key] }}"
                    "{% set total = 3 %}{{ total }} {{ links.unsubscribe_url }} {{ locale }}"
                ),
                webhook_json={"order": ["{{ topic.name }}", 1, {"x": "{{ data.when }}"}]},
            ),
            "ru": Parts(sms_body="{{ contact.attributes.plan }} {{ data.broken"),  # no parse
        },
    )
    assert used(doc) == [
        "contact.name",
        "data.by",  # a computed key: known up to where it is computed
        "data.items",
        "data.lines[0].sku",
        "data.note",  # the method called on it is not a variable
        "data.order.number",
        "data.when",
        "topic.name",
        "links.unsubscribe_url",
        "locale",
        "key",  # free, so it must come from somewhere: it is listed
    ]


def test_a_path_is_looked_up_in_the_preview_data() -> None:
    context = {"data": {"lines": [{"sku": "A-1"}], "n": 0}, "contact": {"name": None}}
    assert lookup(context, "data.lines[0].sku") == (True, "A-1")
    assert lookup(context, "data.n") == (True, 0)
    assert lookup(context, "contact.name") == (True, None)
    assert lookup(context, "data.lines[3].sku") == (False, None)
    assert lookup(context, "data.missing") == (False, None)
    assert shown({"a": 1}) == '{"a": 1}'
    assert len(shown("x" * 500)) == 200


def test_texts_name_every_part_by_path_with_the_json_indented_and_sorted() -> None:
    assert texts("Shipping", {"": {"webhook_json": {"b": 1, "a": "ж"}, "sms_body": "Hi"}}) == {
        "description": "Shipping",
        "variants..sms_body": "Hi",
        "variants..webhook_json": '{\n  "a": "ж",\n  "b": 1\n}',
    }


def test_what_changed_between_two_versions() -> None:
    lines = [f"line {n}" for n in range(1, 21)]
    before = (None, {"": {"email_text": "\n".join(lines), "sms_body": "Hi {{ contact.name }}"}})
    edited = [*lines[:9], "line ten", *lines[10:]]
    after = (
        "Now described",
        {
            "": {"email_text": "\n".join(edited), "sms_body": "Hello {{ contact.name }}!"},
            "ru": {"sms_body": "Привет"},
        },
    )
    assert changed(before, after) == [
        "variants..email_text",
        "variants..sms_body",
        "description",
        "variants.ru.sms_body",
    ]
    text, sms, description, russian = compare(before, after)
    assert (text.locale, text.part, text.change) == ("", "email_text", PartChange.CHANGED)
    assert [(line.change, line.old, line.new) for line in text.lines] == [
        (Change.SKIPPED, None, None),
        (Change.SAME, 7, 7),
        (Change.SAME, 8, 8),
        (Change.SAME, 9, 9),
        (Change.REMOVED, 10, None),
        (Change.ADDED, None, 10),
        (Change.SAME, 11, 11),
        (Change.SAME, 12, 12),
        (Change.SAME, 13, 13),
        (Change.SKIPPED, None, None),
    ]
    assert text.lines[4].pieces == ((False, "line "), (True, "10"))
    assert text.lines[5].pieces == ((False, "line "), (True, "ten"))
    assert sms.lines[1].pieces == ((True, "Hello"), (False, " {{ contact.name }}"), (True, "!"))
    assert (description.locale, description.change) == (None, PartChange.ADDED)
    assert description.path == "description"
    assert (russian.path, russian.change) == ("variants.ru.sms_body", PartChange.ADDED)


def test_the_same_content_has_no_changes() -> None:
    content = ("x", {"": {"webhook_json": {"a": 1, "b": 2}}})
    reordered = ("x", {"": {"webhook_json": {"b": 2, "a": 1}}})
    assert changed(content, reordered) == []
    assert compare(content, reordered) == []
