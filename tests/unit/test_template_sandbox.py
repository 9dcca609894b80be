"""RELIABILITY 20: known SSTI payloads and resource bombs fail with TemplateError, doing nothing."""

from __future__ import annotations

import copy
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from hub.domain import Channel
from hub.templates import Links, Parts, Renderer, TemplateDoc, TemplateError

LINKS = Links(preferences_url="https://h.example/p", unsubscribe_url="https://h.example/u")
RENDERER = Renderer(max_seconds=1.0)
TOUCH = "touch {marker}"  # each payload that reaches a shell would create the marker file

PAYLOADS = {
    "mro_subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "subclasses_popen": "{{ ''.__class__.__mro__[1].__subclasses__()[0].__init__.__globals__"
    "['sys'].modules['os'].popen('" + TOUCH + "').read() }}",
    "cycler_globals_os": "{{ cycler.__init__.__globals__.os.popen('" + TOUCH + "').read() }}",
    "joiner_globals": "{{ joiner.__init__.__globals__.os.system('" + TOUCH + "') }}",
    "template_reference_context": "{{ self._TemplateReference__context }}",
    "self_init_globals": "{{ self.__init__.__globals__ }}",
    "request_undefined": "{{ request.application.__globals__ }}",
    "config_undefined": "{{ config.items() }}",
    "attr_class": "{{ ''|attr('__class__') }}",
    "attr_built_from_format": "{{ ''|attr('%c%cclass%c%c'|format(95, 95, 95, 95)) }}",
    "format_filter_class": "{{ '%s'|format(''.__class__.__mro__) }}",
    "str_format_attribute": "{{ '{0.__class__.__mro__}'.format('') }}",
    "attr_format_call": "{{ '{0.__class__}'|attr('format')('') }}",
    "attr_format_printed": "{{ ''|attr('format') }}",
    "format_map_attribute": "{{ '{x.__class__}'.format_map({'x': ''}) }}",
    "string_bomb": "{{ 'a' * 100000000 }}",
    "huge_range": "{% for i in range(10**9) %}x{% endfor %}",
    "nested_ranges": "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}"
    "{% endfor %}",
    "nested_list_loops": "{% set l = range(10000)|list %}{% for a in l %}{% for b in l %}"
    "{% endfor %}{% endfor %}",
    "nested_data_loops": "{% for a in data.many %}{% for b in data.many %}{% for c in data.many %}"
    "{% endfor %}{% endfor %}{% endfor %}",
    "lipsum_globals": "{{ lipsum.__globals__['os'].popen('" + TOUCH + "') }}",
    "namespace_init": "{{ namespace.__init__.__globals__ }}",
    "range_globals": "{{ range.__globals__ }}",
    "dict_class": "{{ dict.__base__.__subclasses__() }}",
    "data_class": "{{ data.__class__.__base__.__subclasses__() }}",
    "undefined_class": "{{ nothing.__class__.__init__.__globals__ }}",
    "macro_recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "recursive_loop": "{% for x in data.list recursive %}{{ loop(data.list) }}{% endfor %}",
    "power_bomb": "{{ 10 ** (10 ** 10) }}",
    "center_bomb": "{{ 'x'|center(1000000000) }}",
    "printf_width_bomb": "{{ '%1000000000s'|format('') }}",
    "percent_width_bomb": "{{ '%1000000000s' % '' }}",
    "format_width_bomb": "{{ '{:>1000000000}'.format('') }}",
    "nested_format_spec": "{{ '{:{}}'.format('', 1000000000) }}",
    "replace_bomb": "{{ ('a' * 1000)|replace('a', 'a' * 1000) }}",
    "indent_bomb": "{{ ('a\\n' * 50000)|indent('b' * 100) }}",
    "join_bomb": "{{ (['x' * 100000] * 3)|join }}",
    "expandtabs_method": "{{ ('\\t' * 1000).expandtabs(100000) }}",
    "translate_method": "{{ 'aaaa'.translate({97: 'x' * 100000}) }}",
    "concat_doubling": "{% set ns = namespace(x='aaaaaaaa') %}{% for i in range(64) %}"
    "{% set ns.x = ns.x ~ ns.x %}{% endfor %}",
    "plus_doubling": "{% set ns = namespace(x='aaaaaaaa') %}{% for i in range(64) %}"
    "{% set ns.x = ns.x + ns.x %}{% endfor %}",
    "nested_list_repr": "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}"
    "{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}",
    "nested_list_tojson": "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}"
    "{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l|tojson }}",
    "include_file": "{% include '/etc/passwd' %}",
    "extends_file": "{% extends '/etc/passwd' %}",
    "import_file": "{% import '/etc/passwd' as p %}",
    "from_import": "{% from 'x' import y %}",
    # The immutable sandbox: nothing passed in may be changed.
    "list_append": "{% set x = data.list.append(3) %}",
    "list_pop": "{{ data.list.pop() }}",
    "list_setitem": "{{ data.list.__setitem__(0, 9) }}",
    "dict_update": "{% set x = data.update({'a': 1}) %}",
    "dict_clear_by_attr": "{{ data|attr('clear')() }}",
    "dict_setdefault": "{{ contact.setdefault('name', 'x') }}",
    "set_attribute": "{% set data.a = 5 %}",
    "nested_dict_pop": "{{ contact.attributes.pop('vip') }}",
}


def context() -> dict[str, Any]:
    return {
        "contact": {"name": "Ada", "attributes": {"vip": True}},
        "topic": {"key": "t", "name": "T"},
        "data": {"list": [1, 2], "a": 0, "many": list(range(1000))},
    }


def run(parts: Parts, channel: Channel, given: dict[str, Any]) -> None:
    template = RENDERER.compile(TemplateDoc(key="evil", variants={"": parts}))
    template.render(channel, locale=None, context=given, links=LINKS)


@pytest.fixture
def no_processes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record any attempt to start a process: a sandbox escape would reach one of these."""
    started: list[str] = []

    def record(name: str) -> Any:
        def attempt(*args: Any, **kwargs: Any) -> Any:
            started.append(name)
            raise AssertionError(f"{name} called from a template")

        return attempt

    monkeypatch.setattr(os, "system", record("os.system"))
    monkeypatch.setattr(os, "popen", record("os.popen"))
    monkeypatch.setattr(subprocess, "Popen", record("subprocess.Popen"))
    return started


@pytest.mark.parametrize("part", ["sms_body", "email_html"])
@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_payload_fails_safely(
    payload: str, part: str, tmp_path: Path, no_processes: list[str]
) -> None:
    marker = tmp_path / "pwned"
    source = payload.replace("{marker}", str(marker))
    parts = Parts(email_subject="s", **{part: source})
    channel = Channel.SMS if part == "sms_body" else Channel.EMAIL
    given = context()
    before = copy.deepcopy(given)
    started = time.monotonic()
    with pytest.raises(TemplateError) as raised:
        run(parts, channel, given)
    assert raised.value.field == f"variants..{part}"
    assert time.monotonic() - started < 1.5  # refused early, not after eating the box
    assert not marker.exists()
    assert no_processes == []
    assert given == before  # nothing passed in was changed
    message = str(raised.value)
    for leak in ("uid=", "root:", "<class", "<module", "<function", "__builtins__"):
        assert leak not in message


def test_a_slow_template_stops_at_the_time_limit() -> None:
    renderer = Renderer(max_seconds=0.2)
    exponential = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    )
    template = renderer.compile(TemplateDoc(key="slow", variants={"": Parts(sms_body=exponential)}))
    started = time.monotonic()
    with pytest.raises(TemplateError, match=r"longer than 0\.2 s"):
        template.render(Channel.SMS, locale=None, context=context(), links=LINKS)
    assert time.monotonic() - started < 1.0


NS_SUM = "{% set ns = namespace(n=0) %}{% for x in data.list %}{% set ns.n = ns.n + x %}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ contact.name|upper }} {{ contact['name'] }}", "ADA Ada"),
        ("{{ data.list|join(', ') }} {{ data.list|length }}", "1, 2 2"),
        ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
        ("{{ '%.2f'|format(data.price) }} {{ '%05d' % 42 }}", "9.50 00042"),
        ("{{ '{} of {}'.format(1, 2) }} {{ '{a}'.format_map({'a': 3}) }}", "1 of 2 3"),
        ("[{{ 'x'|center(5) }}|{{ 'a b'|replace(' ', '-') }}|{{ 'ab' * 2 }}]", "[  x  |a-b|abab]"),
        (NS_SUM + "{% endfor %}{{ ns.n }}", "3"),
        ("{{ data.big }} {{ 2 ** 64 }}", "1000000000000 18446744073709551616"),
        ("{{ data.list + [3] }} {{ 'a,b'.split(',') }}", "[1, 2, 3] ['a', 'b']"),
        ("{{ contact.missing|default('-') }}{% if contact.x is defined %}!{% endif %}", "-"),
        ("{{ data.items()|list|length }} {{ 'Ab'.lower() }}", "4 ab"),
        ("{{ data.list|map('string')|join }} {{ data.list|select('odd')|list }}", "12 [1]"),
    ],
)
def test_ordinary_templates_still_work(source: str, expected: str) -> None:
    template = RENDERER.compile(TemplateDoc(key="ok", variants={"": Parts(sms_body=source)}))
    data = {"list": [1, 2], "price": 9.5, "big": 10**12, "a": 0}
    out = template.render(
        Channel.SMS, locale=None, context={**context(), "data": data}, links=LINKS
    )
    assert out.text == expected
