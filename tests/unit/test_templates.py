"""Template rendering: locales and fallbacks, the e-mail layout, each channel's parts, errors."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain import Channel
from hub.templates import (
    CompiledTemplate,
    Links,
    Parts,
    Rendered,
    Renderer,
    TemplateDoc,
    TemplateError,
)
from hub.templates.sandbox import Sandbox
from hub.templates.text import html_to_text

EMAIL, SMS, VOICE, WEBHOOK = Channel.EMAIL, Channel.SMS, Channel.VOICE, Channel.WEBHOOK
LINKS = Links(
    preferences_url="https://hub.example.org/p/tok?a=1&b=2",
    unsubscribe_url="https://hub.example.org/u/tok",
)
CONTEXT: dict[str, Any] = {
    "contact": {"name": "Ada", "locale": "ru-RU", "external_id": "c-1", "attributes": {}},
    "topic": {"key": "orders", "name": "Orders"},
    "data": {"order": "A-1", "html": "<b>bold</b> & co"},
}
RENDERER = Renderer(company_name="Acme")


def compiled(**variants: Parts) -> CompiledTemplate:
    """Variants by locale; `default=` stands for the "" key."""
    keyed = {("" if k == "default" else k.replace("_", "-")): v for k, v in variants.items()}
    return RENDERER.compile(TemplateDoc(key="shipped", variants=keyed))


def render(
    template: CompiledTemplate, channel: Channel, locale: str | None = None, **data: Any
) -> Rendered:
    context = {**CONTEXT, "data": {**CONTEXT["data"], **data}}
    return template.render(channel, locale=locale, context=context, links=LINKS)


MAIL = Parts(
    email_subject="Order {{ data.order }} shipped",
    email_html='<p>Hello {{ contact.name }}, <a href="https://t.example/{{ data.order }}">track</a>'
    "</p><p>{{ data.html }}</p>",
)
RU_MAIL = Parts(
    email_subject="Заказ {{ data.order }}", email_text="Здравствуйте, {{ contact.name }}"
)


def test_email_html_sits_in_an_accessible_layout_with_both_links_and_the_company() -> None:
    out = render(compiled(default=MAIL), EMAIL, "en-GB")
    assert out.subject == "Order A-1 shipped"
    assert out.html is not None
    assert out.html.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in out.html
    assert '<meta charset="utf-8">' in out.html
    assert "<title>Order A-1 shipped</title>" in out.html
    assert "<p>Hello Ada, " in out.html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in out.html  # data is escaped, markup is not
    assert '<a href="https://hub.example.org/p/tok?a=1&amp;b=2"' in out.html
    assert ">Manage your preferences</a>" in out.html
    assert '<a href="https://hub.example.org/u/tok"' in out.html
    assert ">Unsubscribe</a>" in out.html
    assert ">Acme</p>" in out.html
    assert out.body is None


def test_the_text_part_is_derived_from_the_html_and_carries_both_links() -> None:
    out = render(compiled(default=MAIL), EMAIL)
    assert out.text is not None
    body, footer = out.text.split("\n\n-- \n")
    assert body == "Hello Ada, track (https://t.example/A-1)\n\n<b>bold</b> & co"
    assert footer == (
        "Acme\n"
        "Manage your preferences: https://hub.example.org/p/tok?a=1&b=2\n"
        "Unsubscribe: https://hub.example.org/u/tok\n"
    )


def test_a_text_only_mail_has_no_html_but_keeps_the_footer_links_in_russian() -> None:
    out = render(compiled(default=MAIL, ru=RU_MAIL), EMAIL, "ru-RU")
    assert out.subject == "Заказ A-1"
    assert out.html is None
    assert out.text == (
        "Здравствуйте, Ada\n\n-- \nAcme\n"
        "Управлять подписками: https://hub.example.org/p/tok?a=1&b=2\n"
        "Отписаться: https://hub.example.org/u/tok\n"
    )


def test_russian_variant_gets_russian_footer_wording_and_lang() -> None:
    ru = Parts(email_subject="Заказ", email_html="<p>Привет</p>")
    out = render(compiled(default=MAIL, ru_RU=ru), EMAIL, "ru-ru")
    assert out.html is not None
    assert '<html lang="ru-RU">' in out.html
    assert ">Управлять подписками</a>" in out.html
    assert ">Отписаться</a>" in out.html
    assert "Manage your preferences" not in out.html


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("ru-RU", "ru-RU"),
        ("ru-ru", "ru-RU"),  # case does not matter
        ("RU_ru", "ru-RU"),  # nor the separator
        ("ru", "ru"),
        ("ru-BY", "ru"),  # falls back to the language
        ("en-GB", "default"),
        ("de", "default"),
        (None, "default"),
        ("", "default"),
    ],
)
def test_locale_falls_back_from_region_to_language_to_default(
    locale: str | None, expected: str
) -> None:
    template = compiled(
        default=Parts(sms_body="default"), ru=Parts(sms_body="ru"), ru_RU=Parts(sms_body="ru-RU")
    )
    assert render(template, SMS, locale).text == expected


def test_fallback_is_per_part_but_an_email_body_comes_from_one_variant() -> None:
    template = compiled(
        default=Parts(email_subject="Hello", email_html="<p>English</p>", email_text="English"),
        ru=Parts(email_html="<p>Русский</p>"),  # no subject, no text of its own
    )
    out = render(template, EMAIL, "ru")
    assert out.subject == "Hello"  # the subject falls back alone
    assert out.html is not None
    assert "<p>Русский</p>" in out.html
    assert out.text is not None
    assert out.text.startswith("Русский\n")  # derived from the Russian html, not the English text


def test_channels_are_those_some_variant_can_render() -> None:
    assert compiled(default=MAIL).channels() == {EMAIL}
    only_subject = compiled(default=Parts(email_subject="s"), ru=Parts(sms_body="x"))
    assert only_subject.channels() == {SMS}
    split = compiled(default=Parts(email_text="body"), ru=Parts(email_subject="тема"))
    assert split.channels() == {EMAIL}  # "ru" borrows the default's body
    apart = compiled(en=Parts(email_text="body"), ru=Parts(email_subject="тема"))
    assert apart.channels() == frozenset()  # no locale's chain has both
    every = compiled(
        default=Parts(email_subject="s", email_text="t", sms_body="x", voice_say="v"),
        fr=Parts(webhook_json={"a": 1}),
    )
    assert every.channels() == {EMAIL, SMS, VOICE, WEBHOOK}


def test_a_part_missing_from_every_variant_cannot_render() -> None:
    with pytest.raises(TemplateError, match="cannot render sms") as raised:
        render(compiled(default=MAIL), SMS, "ru-RU")
    assert raised.value.field == "sms_body"
    assert "'ru-ru', 'ru', default" in raised.value.message
    with pytest.raises(TemplateError, match="email_subject"):
        render(compiled(en=Parts(email_text="body"), ru=Parts(email_subject="s")), EMAIL, "ru")


def test_sms_and_voice_are_stripped_and_not_escaped() -> None:
    template = compiled(
        default=Parts(sms_body="\n  Hi {{ data.html }}  \n", voice_say="  Say {{ contact.name }}. ")
    )
    assert render(template, SMS).text == "Hi <b>bold</b> & co"
    assert render(template, VOICE).text == "Say Ada."
    with pytest.raises(TemplateError, match="rendered to nothing"):
        render(compiled(default=Parts(sms_body="  {{ data.empty }} ")), SMS, empty="")


def test_subject_is_one_line_so_it_cannot_inject_headers() -> None:
    template = compiled(default=Parts(email_subject="Hi {{ data.s }}", email_text="x"))
    out = render(template, EMAIL, s="a\r\nBcc: victim@example.org")
    assert out.subject == "Hi a Bcc: victim@example.org"


def test_webhook_renders_string_leaves_and_keeps_other_json_values() -> None:
    doc = {
        "event": "order.shipped",
        "order": "{{ data.order }}",
        "who": {"name": "{{ contact.name }}", "{{ not a template }}": "{{ locale }}"},
        "n": 3,
        "price": 9.5,
        "ok": True,
        "none": None,
        "lines": ["{{ data.html }}", 1, ["Привет"]],
    }
    out = render(compiled(default=Parts(webhook_json=doc)), WEBHOOK, "ru")
    assert out.body is not None
    assert out.subject is out.text is out.html is None
    # Compact separators, UTF-8 rather than \u escapes, keys as written and never rendered.
    assert out.body.decode() == (
        '{"event":"order.shipped","order":"A-1",'
        '"who":{"name":"Ada","{{ not a template }}":"ru"},'
        '"n":3,"price":9.5,"ok":true,"none":null,"lines":["<b>bold</b> & co",1,["Привет"]]}'
    )


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"a": float("nan")}, "variants..webhook_json.a"),
        ({"a": [1, {2, 3}]}, "variants..webhook_json.a.1"),
        ({1: "x"}, "variants..webhook_json"),
    ],
)
def test_webhook_json_must_be_json(value: Any, field: str) -> None:
    with pytest.raises(TemplateError) as raised:
        compiled(default=Parts(webhook_json=value))
    assert raised.value.field == field


def test_only_the_five_documented_names_are_visible() -> None:
    template = compiled(
        default=Parts(
            sms_body="{{ contact.name }}|{{ topic.name }}|{{ data.order }}|"
            "{{ links.unsubscribe_url }}|{{ locale }}"
        )
    )
    out = template.render(SMS, locale="ru", context={**CONTEXT, "secret": "s3"}, links=LINKS)
    assert out.text == "Ada|Orders|A-1|https://hub.example.org/u/tok|ru"
    leak = compiled(default=Parts(sms_body="{{ secret }}"))
    with pytest.raises(TemplateError, match="there is no 'secret': a template reads contact, "):
        leak.render(SMS, locale=None, context={**CONTEXT, "secret": "s3"}, links=LINKS)


def test_an_undefined_variable_names_the_variable_the_part_and_the_line() -> None:
    template = compiled(ru=Parts(email_subject="s", email_html="<p>a</p>\n<p>{{ data.nope }}</p>"))
    with pytest.raises(TemplateError) as raised:
        render(template, EMAIL, "ru")
    assert raised.value.field == "variants.ru.email_html"
    assert "'nope'" in raised.value.message
    assert raised.value.line == 2
    assert str(raised.value).startswith("variants.ru.email_html: ")


def test_check_names_the_first_bad_field_with_the_line_of_a_syntax_error() -> None:
    doc = TemplateDoc(
        key="k",
        variants={
            "": Parts(email_subject="fine", email_html="<p>\n{% if x %}\n</p>"),
            "ru": Parts(sms_body="{{ x }"),
        },
    )
    with pytest.raises(TemplateError) as raised:
        RENDERER.check(doc)
    assert raised.value.field == "variants..email_html"
    assert raised.value.line == 2
    assert "endif" in raised.value.message


@pytest.mark.parametrize(
    ("variants", "field", "message"),
    [
        ({"russian!": Parts()}, "variants.russian!", "not a locale"),
        ({"ru-RU": Parts(), "ru_ru": Parts()}, "variants.ru_ru", "same locale"),
        ({"": Parts(sms_body=3)}, "variants..sms_body", "not a string"),  # type: ignore[arg-type]
        ({"": Parts(sms_body="x" * 100_001)}, "variants..sms_body", "longer than 100000"),
    ],
)
def test_check_refuses_malformed_docs(variants: Any, field: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message) as raised:
        RENDERER.check(TemplateDoc(key="k", variants=variants))
    assert raised.value.field == field


def test_output_is_cut_off_at_the_limit() -> None:
    small = Renderer(max_output_chars=1_000)
    loop = "{% for i in range(10000) %}0123456789{% endfor %}"
    template = small.compile(TemplateDoc(key="k", variants={"": Parts(sms_body=loop)}))
    with pytest.raises(TemplateError, match="output longer than 1000 characters"):
        template.render(SMS, locale=None, context=CONTEXT, links=LINKS)


def test_compile_compiles_each_part_once_and_render_never_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str | None] = []
    original = Sandbox.compile

    def counting(self: Sandbox, source: Any, name: str | None = None, *args: Any) -> Any:
        calls.append(name)
        return original(self, source, name, *args)

    monkeypatch.setattr(Sandbox, "compile", counting)
    fresh = Renderer(company_name="Acme")
    doc = TemplateDoc(key="shipped", variants={"": MAIL, "ru": RU_MAIL})
    template = fresh.compile(doc)
    assert sorted(c for c in calls if c) == [
        "variants..email_html",
        "variants..email_subject",
        "variants.ru.email_subject",
        "variants.ru.email_text",
    ]
    calls.clear()
    fresh.compile(doc)
    assert calls == [], "the same sources again (a service's repeated inline content)"
    names = [f"Person {i}" for i in range(50)]
    for name in names:
        context = {**CONTEXT, "contact": {"name": name}}
        out = template.render(EMAIL, locale="ru", context=context, links=LINKS)
        assert out.text is not None
        assert out.text.startswith(f"Здравствуйте, {name}\n")
    assert calls == []


def test_html_to_text_keeps_structure_and_drops_what_is_not_read() -> None:
    source = (
        "<html><head><title>T</title><style>p { color: red }</style></head><body>"
        "<h1>Title</h1><p>One &amp; two<br>three</p><!-- note -->"
        "<ul><li>a</li><li>b</li></ul><ol><li>x</li><li>y</li></ol>"
        '<p><a href="https://e.org/?a=1&amp;b=2">open</a> <a href="https://e.org">https://e.org</a>'
        ' <a href="#top">top</a> <img alt="logo" src="l.png"></p><script>if (a<b) {}</script>'
        "</body></html>"
    )
    assert html_to_text(source) == (
        "Title\n\nOne & two\nthree\n\n- a\n- b\n\n1. x\n2. y\n\n"
        "open (https://e.org/?a=1&b=2) https://e.org top logo"
    )
    assert html_to_text("&lt;b&gt; stays text") == "<b> stays text"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_data_is_escaped_in_html_and_verbatim_in_text(value: str) -> None:
    template = compiled(
        default=Parts(
            email_subject="s",
            email_html='<p id="data">{{ data.value }}</p>',
            email_text="[{{ data.value }}]",
        )
    )
    out = render(template, EMAIL, value=value)
    assert out.html is not None
    assert out.text is not None
    match = re.search(r'<p id="data">(.*?)</p>\n</div>', out.html, re.DOTALL)
    assert match is not None
    inside = match.group(1)
    assert "<" not in inside
    assert ">" not in inside
    assert '"' not in inside
    assert html.unescape(inside) == value
    assert f"[{value}]" in out.text
