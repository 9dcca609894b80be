"""A missing value in plain words: what is missing, from what, with the part and line kept;
the same words after a round trip through the render processes' pickling."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from hub.domain import Channel
from hub.templates import Links, Parts, Renderer, TemplateDoc, TemplateError
from hub.templates.missing import DATA, spelt

LINKS = Links(preferences_url="https://h.example/p", unsubscribe_url="https://h.example/u")
RENDERER = Renderer()


def context(name: str | None = "Ada Lovelace", **data: Any) -> dict[str, Any]:
    contact = {"external_id": "w-1", "name": name, "locale": None, "timezone": "UTC"}
    return {
        "contact": contact | {"attributes": {"city": "Berlin"}},
        "topic": {"key": "offers", "name": "Offers"},
        "data": data,
    }


def failure(source: str, given: dict[str, Any] | None = None) -> TemplateError:
    doc = TemplateDoc(key="k", variants={"": Parts(sms_body=source)})
    with pytest.raises(TemplateError) as raised:
        RENDERER.compile(doc).render(
            Channel.SMS, locale=None, context=given or context(), links=LINKS
        )
    return raised.value


@pytest.mark.parametrize(
    ("source", "given", "words", "path"),
    [
        ("Hi\n{{ data.offer }}", context(), f"{DATA} has no 'offer'", "data.offer"),
        ("{{ data.ofer }}", context(offer="20%"), "has no 'ofer' (it has offer)", "data.ofer"),
        (
            "{{ contact.attributes.plan }}",
            context(),
            "Ada Lovelace's attributes have no 'plan' (they have city)",
            "contact.attributes.plan",
        ),
        (
            "{{ contact.attributes.plan }}",
            context(name=None),
            "the contact's attributes have no 'plan'",
            "contact.attributes.plan",
        ),
        (
            "{{ contact.attributes.plan }}",
            context(name="mia@acme.example"),  # a stand-in named by its address
            "the contact's attributes have no 'plan'",
            "contact.attributes.plan",
        ),
        ("{{ contact.nme }}", context(), "the contact has no 'nme' (it has external_id", None),
        ("{{ data.offer.price }}", context(offer="20%"), "data.offer is text", None),
        ("{{ data.items[2] }}", context(items=[1]), "is a list of 1, which has no item 2", None),
        ("{{ data.rows[0].x }}", context(rows=[{"y": 1}]), "data.rows[0] has no 'x'", None),
        ("{{ secret }}", context(), "there is no 'secret': a template reads contact", "secret"),
    ],
)
def test_a_missing_value_is_named_from_what_it_was_read_on(
    source: str, given: dict[str, Any], words: str, path: str | None
) -> None:
    error = failure(source, given)
    assert words in error.message, error.message
    assert "dict object" not in error.message
    if path is not None:
        assert error.missing == path
    assert error.field == "variants..sms_body"  # what clients match on is unchanged


def test_the_line_is_kept_and_the_default_variant_is_named_in_words() -> None:
    error = failure("Hi\n{{ data.offer }}")
    assert error.line == 2
    assert str(error) == f"variants.default.sms_body: {DATA} has no 'offer' (line 2)"


def test_the_words_cross_the_process_boundary() -> None:
    error = failure("{{ data.offer }}")
    again = pickle.loads(pickle.dumps(error))
    assert (again.message, again.missing, again.line, str(again)) == (
        error.message,
        "data.offer",
        1,
        str(error),
    )


def test_a_sandbox_refusal_keeps_its_own_words() -> None:
    error = failure("{{ ''.__class__ }}")
    assert error.refused
    assert "unsafe" in error.message
    assert error.missing is None


@pytest.mark.parametrize(
    ("field", "words"),
    [
        ("variants..email_html", "variants.default.email_html"),
        ("variants.", "variants.default"),
        ("template..email_subject", "template.default.email_subject"),
        ("variants.ru.sms_body", "variants.ru.sms_body"),
        ("email_subject", "email_subject"),
    ],
)
def test_a_field_path_is_spelt_without_the_stray_dot(field: str, words: str) -> None:
    assert spelt(field) == words
