"""Issue 15.1: a value a template builds cannot grow past the structure limits, however it is
built, so no single C-level operation on it (compare, hash, repr, JSON, sort) can run long.

Each payload doubles a shared value forty times: 2**40 when walked, a few hundred bytes in
memory. Before the limits, N=28 of the first took 4.9 s inside one `==`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from hub.domain import Channel
from hub.templates import Links, Parts, Renderer, TemplateDoc, TemplateError
from hub.templates.structure import MAX_DEPTH, MAX_SIZE, Shapes, StructureTooLarge

LINKS = Links(preferences_url="https://h.example/p", unsubscribe_url="https://h.example/u")
RENDERER = Renderer(max_seconds=2.0)
DOUBLED = (
    "{% set ns = namespace(a=[1], b=[1]) %}{% for i in range(40) %}"
    "{% set ns.a = [ns.a, ns.a] %}{% set ns.b = [ns.b, ns.b] %}{% endfor %}"
)

# Every way found to make a value share its parts, and every way to walk one.
PAYLOADS = {
    "compare": DOUBLED + "{{ ns.a == ns.b }}",
    "not_equal": DOUBLED + "{{ ns.a != ns.b }}",
    "less_than": DOUBLED + "{{ ns.a < ns.b }}",
    "in_list": DOUBLED + "{{ ns.a in [ns.b] }}",
    "print": DOUBLED + "{{ ns.a }}",
    "string": DOUBLED + "{{ ns.a|string }}",
    "tojson": DOUBLED + "{{ ns.a|tojson }}",
    "sort": DOUBLED + "{{ [ns.a, ns.b]|sort }}",
    "max": DOUBLED + "{{ [ns.a, ns.b]|max }}",
    "unique": DOUBLED + "{{ [ns.a, ns.b]|unique|list }}",
    "tuple_hash": "{% set ns = namespace(t=(1,)) %}{% for i in range(40) %}"
    "{% set ns.t = (ns.t, ns.t) %}{% endfor %}{{ {ns.t: 1} }}",
    "dict_values": "{% set ns = namespace(d={}) %}{% for i in range(40) %}"
    "{% set ns.d = {'a': ns.d, 'b': ns.d} %}{% endfor %}{{ ns.d == ns.d|dictsort }}",
    "dict_global": "{% set ns = namespace(d={}) %}{% for i in range(40) %}"
    "{% set ns.d = dict(a=ns.d, b=ns.d) %}{% endfor %}{{ ns.d|tojson }}",
    "repeat": "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}"
    "{% set ns.l = [ns.l] * 2 %}{% endfor %}{{ ns.l == ns.l[:] }}",
    "concatenate": "{% set ns = namespace(l=[[1]]) %}{% for i in range(40) %}"
    "{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}",
    "list_filter": "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}"
    "{% set ns.l = (ns.l, ns.l)|list %}{% endfor %}{{ ns.l|tojson }}",
    "batch": "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}"
    "{% set ns.l = [ns.l, ns.l]|batch(2)|list %}{% endfor %}{{ ns.l|tojson }}",
    "macro_varargs": "{% set ns = namespace(a=[1]) %}"
    "{% macro keep() %}{% set ns.a = varargs %}{% endmacro %}"
    "{% for i in range(40) %}{{ keep(ns.a, ns.a) }}{% endfor %}{{ ns.a == ns.a[:] }}",
    "macro_kwargs": "{% set ns = namespace(a=[1]) %}"
    "{% macro keep() %}{% set ns.a = kwargs %}{% endmacro %}"
    "{% for i in range(40) %}{{ keep(x=ns.a, y=ns.a) }}{% endfor %}{{ ns.a|tojson }}",
    "cycler_items": "{% set ns = namespace(a=[1]) %}{% for i in range(40) %}"
    "{% set ns.a = cycler(ns.a, ns.a).items %}{% endfor %}{{ ns.a == ns.a[:] }}",
    "deep": "{% set ns = namespace(l=[]) %}{% for i in range(5000) %}"
    "{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l|tojson }}",
    "sum_of_lists": "{% set ns = namespace(l=[[1]]) %}{% for i in range(40) %}"
    "{% set ns.l = [ns.l|sum(start=[]), ns.l|sum(start=[])] %}{% endfor %}{{ ns.l|tojson }}",
}


def render(source: str, data: dict[str, Any] | None = None) -> str:
    compiled = RENDERER.compile(TemplateDoc("t", {"": Parts(sms_body=source)}))
    context = {"contact": {"name": "Ada"}, "data": data or {}}
    rendered = compiled.render(Channel.SMS, locale=None, context=context, links=LINKS)
    return rendered.text or ""


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_a_self_similar_value_is_refused_at_once(name: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError) as raised:
        render(PAYLOADS[name])
    assert time.monotonic() - started < 1.0
    assert raised.value.refused, raised.value
    assert raised.value.field == "variants..sms_body"


def test_the_interpreter_is_never_held_while_a_payload_runs() -> None:
    """A thread that wants the GIL every millisecond gets it within 50 ms throughout."""
    gaps: list[float] = []
    done = threading.Event()

    def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        for source in PAYLOADS.values():
            with pytest.raises(TemplateError):
                render(source)
    finally:
        done.set()
        thread.join()
    assert max(gaps) < 0.05, f"held for {max(gaps) * 1000:.0f} ms"


def test_sum_joins_lists_in_one_pass() -> None:
    # sum() would copy the growing list 40,000 times: seconds inside one C call.
    started = time.monotonic()
    assert render("{{ ([[1]] * 40000)|sum(start=[])|length }}") == "40000"
    assert time.monotonic() - started < 0.5
    assert render("{{ [1, 2, 3]|sum }} {{ [[1], [2]]|sum(start=[]) }}") == "6 [1, 2]"
    assert render("{{ data.rows|sum(attribute='n') }}", {"rows": [{"n": 2}, {"n": 5}]}) == "7"


def test_ordinary_structures_still_render() -> None:
    appended = (
        "{% set ns = namespace(l=[]) %}{% for i in range(2000) %}"
        "{% set ns.l = ns.l + [i] %}{% endfor %}{{ ns.l|length }} {{ ns.l[-1] }}"
    )
    assert render(appended) == "2000 1999"
    table = "{% for k, v in data.prices|dictsort %}{{ k }}={{ v }};{% endfor %}"
    assert render(table, {"prices": {"b": 2, "a": 1}}) == "a=1;b=2;"
    pairs = "{% set p = [('a', 1), ('b', 2)] %}{{ dict(p)|tojson }} {{ ('a', 1) in p }}"
    assert render(pairs) == '{"a": 1, "b": 2} True'
    nested = "{% set x = [[1, 2], [3, [4, 5]]] %}{{ x == [[1, 2], [3, [4, 5]]] }}"
    assert render(nested) == "True"
    macro = "{% macro m() %}{{ varargs|length }}{% endmacro %}{{ m(1, 2, 3) }}"
    assert render(macro) == "3"


def test_shapes_count_every_repeat_without_walking_them() -> None:
    shapes = Shapes()
    leaf = ["abcdefgh" * 2]  # 1 + (1 + 16 // 8)
    shapes.check(leaf)
    assert shapes.known[id(leaf)][1:] == (4, 1)
    pair = [leaf, leaf]
    shapes.check(pair)
    assert shapes.known[id(pair)][1:] == (9, 2)
    value: list[Any] = [1]
    for _ in range(15):  # 2**16 - 1 units
        value = [value, value]
        shapes.check(value)
    with pytest.raises(StructureTooLarge, match=f"at most {MAX_SIZE:,}"):
        shapes.check([value, value])
    deep: list[Any] = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(StructureTooLarge, match="nested"):
        Shapes().check(deep)


def test_a_deep_value_is_measured_without_recursion() -> None:
    deep: list[Any] = []
    for _ in range(100_000):  # far past the interpreter's recursion limit
        deep = [deep]
    with pytest.raises(StructureTooLarge):
        Shapes().check(deep)
