"""Digests: what waited for a person's daily or weekly digest goes out as one message.

The items of one person, topic and channel that fall due together are each rendered with
their own template, without the e-mail frame, then listed by a digest template: the stored
template `digest-<topic>`, else `digest`, else the built-in one below. The message is sent
once; every item keeps its own delivery row and timeline events, which record the outcome
of the one message (see `outcomes.Result.riders`). `compose` signs the links and wraps
what `render` makes here into the outgoing message.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import Template
from hub.dispatch.audience import Recipient
from hub.dispatch.claim import Claimed
from hub.domain import Channel
from hub.services.templates import doc as template_doc
from hub.templates import (
    CompiledTemplate,
    Links,
    Parts,
    Rendered,
    Renderer,
    TemplateDoc,
    TemplateError,
)

GENERAL_KEY = "digest"

_EN = Parts(
    email_subject=(
        "{{ topic.name }}: your {{ digest.frequency }} digest"
        " ({{ items | length }} {{ 'update' if items | length == 1 else 'updates' }})"
    ),
    email_html=(
        "<h1>{{ topic.name }}</h1>"
        "{% for item in items %}<h2>{{ item.subject or topic.name }}</h2>{{ item.html }}"
        "{% if not loop.last %}<hr>{% endif %}{% endfor %}"
    ),
    email_text=(
        "{{ topic.name }}\n\n"
        "{% for item in items %}{{ loop.index }}. {{ item.subject or topic.name }}\n\n"
        "{{ item.text }}\n\n{% endfor %}"
    ),
    sms_body=(
        "{{ topic.name }} ({{ items | length }}): "
        "{% for item in items %}{{ item.text }}{% if not loop.last %} | {% endif %}{% endfor %}"
    ),
    voice_say=(
        "{{ items | length }} {{ 'update' if items | length == 1 else 'updates' }}"
        " from {{ topic.name }}. {% for item in items %}{{ item.text }} {% endfor %}"
    ),
)
_RU = Parts(
    email_subject=(
        "{{ topic.name }}: {{ 'сводка за день' if digest.frequency == 'daily'"
        " else 'сводка за неделю' }} ({{ items | length }})"
    ),
    email_html=_EN.email_html,
    email_text=_EN.email_text,
    sms_body=_EN.sms_body,
    voice_say=(
        "{{ topic.name }}: новых сообщений — {{ items | length }}."
        " {% for item in items %}{{ item.text }} {% endfor %}"
    ),
)
BUILT_IN = TemplateDoc(key="digest (built in)", variants={"": _EN, "ru": _RU})


def keys(topic_key: str) -> tuple[str, str]:
    """The stored templates a topic's digest looks for, in order."""
    return f"{GENERAL_KEY}-{topic_key}", GENERAL_KEY


@dataclass(frozen=True, slots=True)
class Item:
    """One message in a digest, as its template sees it: `item.subject`, `item.html`..."""

    notification_id: int
    delivery_id: int
    subject: str | None
    text: str
    html: Markup
    data: dict[str, Any]


def item(notification_id: int, delivery_id: int, rendered: Rendered, data: dict[str, Any]) -> Item:
    text = rendered.text or ""
    if rendered.html is not None:
        # The item's own template rendered it with autoescape, as it would for its own e-mail.
        html = Markup(rendered.html)  # noqa: S704 -- escaped already, by the sandbox
    else:
        html = Markup("<p>") + escape(text).replace("\n", Markup("<br>")) + Markup("</p>")
    return Item(notification_id, delivery_id, rendered.subject, text, html, data)


def document(key: str, topic_key: str, external_id: str, items: Iterable[Item]) -> bytes:
    """A webhook digest when the digest template has no webhook part: the items' data."""
    body = {
        "id": key,
        "type": "digest",
        "topic": topic_key,
        "contact": {"external_id": external_id},
        "items": [
            {"notification_id": i.notification_id, "delivery_id": i.delivery_id, "data": i.data}
            for i in items
        ],
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class Waiting(Protocol):
    """What a digest needs of a waiting item's notification (as `compose` prepared it)."""

    @property
    def notification_id(self) -> int: ...

    @property
    def data(self) -> dict[str, Any]: ...

    @property
    def template(self) -> CompiledTemplate: ...


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered digest: `deliveries[0]` leads, the others ride on the one message's fate."""

    key: str
    rendered: Rendered
    deliveries: list[Claimed]


def render(
    waited: Sequence[tuple[Waiting, Claimed]],
    template: CompiledTemplate,
    recipient: Recipient,
    *,
    topic_key: str,
    context: dict[str, Any],
    links: Links,
    key_for: Callable[[Claimed], str],
) -> tuple[Message | None, list[tuple[Claimed, TemplateError]]]:
    """One message listing what waited: each item rendered by its own template, unframed;
    and the items that could not render, with why (no message when none could).

    An item that cannot render fails alone; a digest template that cannot render fails
    every item (the staff's digest template is wrong, not the person's address).
    """
    channel = waited[0][1].channel
    items: list[Item] = []
    kept: list[Claimed] = []
    failed: list[tuple[Claimed, TemplateError]] = []
    for source, delivery in waited:
        try:
            if channel is Channel.WEBHOOK and channel not in source.template.channels():
                rendered = Rendered()
            else:
                rendered = source.template.render(
                    channel,
                    locale=recipient.locale,
                    context=context | {"data": source.data},
                    links=links,
                    framed=False,
                )
        except TemplateError as exc:
            failed.append((delivery, exc))
            continue
        items.append(item(source.notification_id, delivery.id, rendered, source.data))
        kept.append(delivery)
    if not kept:
        return None, failed
    key = key_for(kept[0])
    frequency = recipient.subscription.frequency if recipient.subscription else None
    context = context | {"items": items, "digest": {"frequency": str(frequency or "daily")}}
    try:
        if channel is Channel.WEBHOOK and channel not in template.channels():
            rendered = Rendered(body=document(key, topic_key, recipient.external_id, items))
        else:
            rendered = template.render(
                channel, locale=recipient.locale, context=context, links=links
            )
    except TemplateError as exc:
        return None, failed + [(delivery, exc) for delivery in kept]
    return Message(key, rendered, kept), failed


class Templates:
    """Compiled digest templates, one per stored version, shared by the worker threads."""

    def __init__(self, renderer: Renderer) -> None:
        self._renderer = renderer
        self._built_in = renderer.compile(BUILT_IN)
        self._compiled: dict[tuple[str, int], CompiledTemplate] = {}
        self._lock = threading.Lock()

    def for_topics(
        self, session: Session, topic_keys: Iterable[str]
    ) -> dict[str, CompiledTemplate]:
        wanted = {topic: keys(topic) for topic in topic_keys}
        if not wanted:
            return {}
        names = {name for pair in wanted.values() for name in pair}
        stored = {
            row.key: row for row in session.scalars(select(Template).where(Template.key.in_(names)))
        }
        found: dict[str, CompiledTemplate] = {}
        for topic, (own, general) in wanted.items():
            row = stored.get(own) or stored.get(general)
            found[topic] = self._built_in if row is None else self._compile(row)
        return found

    def _compile(self, row: Template) -> CompiledTemplate:
        with self._lock:
            hit = self._compiled.get((row.key, row.version))
        if hit is None:
            # Saved through the API or the console, so it compiled in the sandbox then.
            hit = self._renderer.compile(template_doc(row.key, row.variants))
            with self._lock:
                self._compiled[(row.key, row.version)] = hit
        return hit
