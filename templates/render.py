"""Compiles a TemplateDoc once per batch and renders it per recipient, channel and locale."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import jinja2
from jinja2 import Template, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

from hub.domain import Channel
from hub.templates.layout import Layout
from hub.templates.limits import LimitExceeded, budget, tick
from hub.templates.missing import missing_path, naming, spelt
from hub.templates.model import Links, Parts, Rendered, TemplateDoc
from hub.templates.sandbox import Sandbox
from hub.templates.text import html_to_text

MAX_SOURCE_CHARS = 100_000  # one part's source; a notification is not a book
CACHED_SOURCE_CHARS = 16_000  # longer parts are compiled each time
MAX_JSON_DEPTH = 32
MAX_OVERRUNS = 3  # renders of one compiled template that may run out of time
_TEXT_PARTS = ("email_subject", "email_text", "sms_body", "voice_say")
_LOCALE = re.compile(r"[a-z]{2,8}(-[a-z0-9]{1,8})*")
_CONTEXT = ("contact", "topic", "data", "items", "digest")  # the last two: digests only
_REFERENCES = (
    nodes.Extends,
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
)  # with `links` and `locale`, all a template sees


class TemplateError(Exception):
    """A part cannot compile or render. `field` is its path: "variants.ru.email_html" (the
    default variant's "variants..email_html", spelt "variants.default.email_html" in words).

    `refused` says the sandbox stopped it (a forbidden attribute, a size, loop, time or
    structure limit): whatever data it is given, such a template is not one to keep.
    `missing` is the path of a value it read that was not there ("data.offer").
    """

    def __init__(
        self,
        field: str,
        message: str,
        *,
        line: int | None = None,
        refused: bool = False,
        missing: str | None = None,
    ) -> None:
        super().__init__(f"{spelt(field)}: {message}" + (f" (line {line})" if line else ""))
        self.field = field
        self.message = message
        self.line = line
        self.refused = refused
        self.missing = missing

    def __reduce__(self) -> tuple[Any, ...]:  # crosses to and from the render processes
        return (
            _template_error,
            (self.field, self.message, self.line, self.refused, self.missing),
        )


def _template_error(
    field: str, message: str, line: int | None, refused: bool, missing: str | None = None
) -> TemplateError:
    return TemplateError(field, message, line=line, refused=refused, missing=missing)


class _Part:
    """One compiled part: a sandboxed template, or its literal text when it has no markup."""

    __slots__ = ("field", "literal", "template")

    def __init__(self, field: str, template: Template | None, literal: str = "") -> None:
        self.field = field
        self.template = template
        self.literal = literal

    def render(self, variables: dict[str, Any], limit: int) -> str:
        if self.template is None:
            if len(self.literal) > limit:
                raise TemplateError(self.field, f"output longer than {limit} characters")
            return self.literal
        pieces: list[str] = []
        size = 0
        try:
            # generate() lets us stop a runaway template at the limit instead of after it.
            for piece in self.template.generate(variables):
                size += len(piece)
                if size > limit:
                    raise LimitExceeded(f"output longer than {limit} characters")
                pieces.append(piece)
                if not len(pieces) % 64:  # the clock costs more than a piece
                    tick()
        except Exception as exc:  # staff code can raise anything; all of it is the template's fault
            raise _failure(self.field, exc) from exc
        return "".join(pieces)


def _failure(field: str, exc: BaseException) -> TemplateError:
    line = exc.lineno if isinstance(exc, TemplateSyntaxError) else None
    tb = exc.__traceback__
    while tb is not None:  # the innermost frame of this part's code is the line to blame
        if tb.tb_frame.f_code.co_filename == field:
            line = tb.tb_lineno
        tb = tb.tb_next
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if not isinstance(exc, jinja2.TemplateError):  # say what Python raised: "ZeroDivisionError"
        message = f"{type(exc).__name__}: {message}"
    # Stopped by the sandbox, or out of memory: no data makes such a template fine.
    refused = isinstance(exc, SecurityError | MemoryError)
    missing = missing_path(message) if isinstance(exc, UndefinedError) else None
    return TemplateError(field, message, line=line, refused=refused, missing=missing)


@dataclass(frozen=True, slots=True)
class _Variant:
    locale: str  # as staff spelt it; "" for the default
    parts: Mapping[str, Any]  # part name -> _Part, or for webhook_json a tree of them


def _fallbacks(locale: str | None) -> tuple[str, ...]:
    """Locale "ru-RU" -> ("ru-ru", "ru", ""): the variants to look in, most specific first."""
    if not locale:
        return ("",)
    subtags = locale.strip().replace("_", "-").lower().split("-")
    return (*("-".join(subtags[:n]) for n in range(len(subtags), 0, -1)), "")


class CompiledTemplate:
    """A TemplateDoc ready to render many times; build it with `Renderer.compile`."""

    def __init__(self, renderer: Renderer, key: str, variants: dict[str, _Variant]) -> None:
        self.key = key
        self._renderer = renderer
        self._variants = variants
        # A batch renders one template for many people: once it has run out of time for a
        # few of them, the rest fail at once instead of costing a worker the budget each.
        self._overruns = 0
        self._overran = ""
        self._channels = frozenset(
            channel
            for channel in Channel
            for locale in {"", *variants}
            if self._can(channel, _fallbacks(locale))
        )

    def channels(self) -> frozenset[Channel]:
        """The channels some variant can render."""
        return self._channels

    def render(
        self,
        channel: Channel,
        *,
        locale: str | None,
        context: Mapping[str, Any],
        links: Links,
        framed: bool = True,
    ) -> Rendered:
        """Render one channel for one recipient.

        `framed` False leaves an e-mail without the layout and footer: an item of a digest,
        which has its own.

        Raises:
            TemplateError: no variant has the parts the channel needs, or a part failed
                (undefined variable, sandbox violation, output or time limit).
        """
        chain = _fallbacks(locale)
        if not self._can(channel, chain):
            needs = _PART_OF.get(channel, "email_subject and email_html or email_text")
            tried = ", ".join(repr(c) if c else "default" for c in chain)
            raise TemplateError(
                needs.split()[0],
                f"no variant ({tried}) of {self.key!r} defines {needs}; cannot render {channel}",
            )
        if self._overruns >= MAX_OVERRUNS:
            field, seconds = self._overran, self._renderer.max_seconds
            raise TemplateError(
                field,
                f"not rendered: {MAX_OVERRUNS} renders of it ran past {seconds:g} s each",
                refused=True,
            )
        variables = {name: context[name] for name in _CONTEXT if name in context}
        variables["links"] = links
        variables["locale"] = locale
        with budget(self._renderer.max_seconds) as spent, naming(variables):
            try:
                return self._render(channel, chain, variables, links if framed else None)
            except TemplateError as exc:
                if spent.overran:
                    self._overruns += 1
                    self._overran = exc.field
                raise

    def _render(
        self,
        channel: Channel,
        chain: tuple[str, ...],
        variables: dict[str, Any],
        links: Links | None,
    ) -> Rendered:
        limit = self._renderer.max_output_chars
        if channel is Channel.EMAIL:
            return self._email(chain, variables, links)
        if channel is Channel.WEBHOOK:
            tree = self._find("webhook_json", chain).parts["webhook_json"]
            value = _render_json(tree, variables, [limit])
            body = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            return Rendered(body=body.encode())
        part: _Part = self._find(_PART_OF[channel], chain).parts[_PART_OF[channel]]
        text = part.render(variables, limit).strip()
        if not text:
            raise TemplateError(part.field, "rendered to nothing")
        return Rendered(text=text)

    def plan(self, locale: str | None, *, every: bool = False) -> list[tuple[Channel, str, str]]:
        """What to render to try a template: (channel, variant, the part to blame) for each
        channel `locale` can render or, with `every`, each channel of each variant."""
        variants = list(self._variants) if every else [(locale or "").replace("_", "-").lower()]
        found = []
        for variant in variants:
            chain = _fallbacks(variant)
            for channel in sorted(self._channels):
                if self._can(channel, chain):
                    part = _PART_OF.get(channel) or self._email_part(chain)
                    spelt = self._variants[variant].locale if variant in self._variants else variant
                    found.append((channel, variant, f"variants.{spelt}.{part}"))
        return found

    def _email_part(self, chain: tuple[str, ...]) -> str:
        body = next(v for v in map(self._variants.get, chain) if v and _has_body(v))
        return "email_html" if "email_html" in body.parts else "email_text"

    def _email(
        self, chain: tuple[str, ...], variables: dict[str, Any], links: Links | None
    ) -> Rendered:
        renderer, limit = self._renderer, self._renderer.max_output_chars
        subject_part: _Part = self._find("email_subject", chain).parts["email_subject"]
        subject = " ".join(subject_part.render(variables, limit).split())  # one line: a header
        if not subject:
            raise TemplateError(subject_part.field, "rendered to nothing")
        # The body's html and text come from one variant, so they are never in two languages.
        body = next(v for v in map(self._variants.get, chain) if v and _has_body(v))
        html_part, text_part = body.parts.get("email_html"), body.parts.get("email_text")
        html = html_part.render(variables, limit) if html_part else None
        text = text_part.render(variables, limit) if text_part else html_to_text(html or "")
        if links is None:
            return Rendered(subject=subject, text=text, html=html)
        # The footer speaks the body's language: its variant's, or the default's.
        lang = body.locale.replace("_", "-") or renderer.default_locale
        if html is not None:
            html = renderer.layout.html(html, lang=lang, subject=subject, links=links)
        return Rendered(
            subject=subject, text=renderer.layout.text(text, lang=lang, links=links), html=html
        )

    def _find(self, part: str, chain: tuple[str, ...]) -> _Variant:
        return next(v for v in map(self._variants.get, chain) if v and part in v.parts)

    def _can(self, channel: Channel, chain: tuple[str, ...]) -> bool:
        found = [v for v in map(self._variants.get, chain) if v]
        if channel is Channel.EMAIL:
            has_subject = any("email_subject" in v.parts for v in found)
            return has_subject and any(_has_body(v) for v in found)
        return any(_PART_OF[channel] in v.parts for v in found)


_PART_OF = {Channel.SMS: "sms_body", Channel.VOICE: "voice_say", Channel.WEBHOOK: "webhook_json"}


def _has_body(variant: _Variant) -> bool:
    return "email_html" in variant.parts or "email_text" in variant.parts


def _render_json(tree: Any, variables: dict[str, Any], left: list[int]) -> Any:
    """Render every string leaf; `left` is the output budget shared by all leaves."""
    if isinstance(tree, _Part):
        text = tree.render(variables, left[0])
        left[0] -= len(text)
        return text
    if isinstance(tree, dict):
        return {key: _render_json(value, variables, left) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_render_json(value, variables, left) for value in tree]
    return tree


class Renderer:
    """Compiles staff templates in a sandbox; one per process, shared by every batch."""

    def __init__(
        self,
        *,
        max_output_chars: int = 200_000,
        max_seconds: float = 2.0,
        company_name: str = "Hub",
        default_locale: str = "en",  # the language the "" variants are written in
    ) -> None:
        self.max_output_chars = max_output_chars
        self.max_seconds = max_seconds
        self.default_locale = default_locale
        self._html = Sandbox(autoescape=True, max_chars=max_output_chars)
        self._text = Sandbox(autoescape=False, max_chars=max_output_chars)
        self.layout = Layout(company_name)
        # A service posting notifications sends the same inline content again and again:
        # each distinct part is parsed and compiled once (about 1 ms), not per request.
        # Bounded in count and in the size of a part kept, so a client posting ever new
        # content cannot fill the memory (at most about 1,024 x 16 KB of source).
        self._compiled = functools.lru_cache(maxsize=1024)(self._compile_new)

    def check(self, doc: TemplateDoc) -> None:
        """Compile every part of `doc`.

        Raises:
            TemplateError: naming the first bad field, with the line of a syntax error.
        """
        self.compile(doc)

    def compile(self, doc: TemplateDoc) -> CompiledTemplate:
        """Compile every part once, for a batch of renders.

        Raises:
            TemplateError: as `check`.
        """
        variants: dict[str, _Variant] = {}
        for locale, parts in doc.variants.items():
            field = f"variants.{locale}"
            normal = locale.replace("_", "-").lower() if isinstance(locale, str) else None
            if normal is None or (normal and not _LOCALE.fullmatch(normal)):
                raise TemplateError(field, "not a locale such as 'ru' or 'en-GB'")
            if normal in variants:
                raise TemplateError(field, f"the same locale as {variants[normal].locale!r}")
            if not isinstance(parts, Parts):
                raise TemplateError(field, "not a Parts")
            variants[normal] = _Variant(locale, self._compile_parts(field, parts))
        return CompiledTemplate(self, doc.key, variants)

    def _compile_parts(self, field: str, parts: Parts) -> dict[str, Any]:
        compiled: dict[str, Any] = {}
        for name in (f.name for f in fields(parts)):
            source = getattr(parts, name)
            if name == "webhook_json":
                if source is not None:
                    compiled[name] = self._compile_json(f"{field}.{name}", source, 0)
            elif source is not None:
                env = self._text if name in _TEXT_PARTS else self._html
                compiled[name] = self._compile(env, f"{field}.{name}", source)
        return compiled

    def _compile_json(self, field: str, value: Any, depth: int) -> Any:
        if depth > MAX_JSON_DEPTH:
            raise TemplateError(field, f"nested deeper than {MAX_JSON_DEPTH}")
        if isinstance(value, str):
            return self._compile(self._text, field, value)
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise TemplateError(field, "not a finite number")
            return value
        if isinstance(value, Mapping):
            if not all(isinstance(k, str) for k in value):
                raise TemplateError(field, "object keys must be strings")
            return {k: self._compile_json(f"{field}.{k}", v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._compile_json(f"{field}.{i}", v, depth + 1) for i, v in enumerate(value)]
        raise TemplateError(field, f"not a JSON value: {type(value).__name__}")

    def _compile(self, env: Sandbox, field: str, source: Any) -> _Part:
        if not isinstance(source, str):
            raise TemplateError(field, "not a string")
        if len(source) > MAX_SOURCE_CHARS:
            raise TemplateError(field, f"longer than {MAX_SOURCE_CHARS} characters")
        if "{" not in source and "\r" not in source:  # no markup: nothing to run
            return _Part(field, None, source.removesuffix("\n"))  # as Jinja would
        if len(source) > CACHED_SOURCE_CHARS:
            return self._compile_new(env, field, source)
        part: _Part = self._compiled(env, field, source)
        return part

    def _compile_new(self, env: Sandbox, field: str, source: str) -> _Part:
        try:
            # The field is the code's file name: tracebacks then point at the part's own lines.
            tree = env.parse(source, field, field)
            for node in tree.find_all(_REFERENCES):
                raise TemplateError(
                    field, "templates cannot extend, include or import others", line=node.lineno
                )
            code = env.compile(tree, field, field)
            return _Part(field, env.template_class.from_code(env, code, env.make_globals(None)))
        except TemplateError:
            raise
        except Exception as exc:  # syntax errors, mostly
            raise _failure(field, exc) from exc
