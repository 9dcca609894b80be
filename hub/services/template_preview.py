"""Render a template for one contact (or a sample) without sending: the API's preview and
the console's editor share it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import Contact, Topic
from hub.schemas.templates import PreviewIn, PreviewOut, RenderedOut
from hub.services import templates
from hub.services.errors import InvalidField
from hub.services.templates import contact_context
from hub.templates import Links, TemplateError
from hub.templates.isolation import RenderProcesses


@dataclass(frozen=True, slots=True)
class Sample:
    """What a preview renders with: the template's variables, the links, the language."""

    context: dict[str, Any]
    links: Links
    locale: str | None

    def values(self) -> dict[str, Any]:
        """Every variable a template can read, as plain values (for the list of them)."""
        links = {"preferences_url": self.links.preferences_url}
        links["unsubscribe_url"] = self.links.unsubscribe_url
        return self.context | {"links": links, "locale": self.locale}


def sample(session: Session, body: PreviewIn, *, public_url: str) -> Sample:
    """Raises InvalidField for an unknown contact or topic."""
    contact = dict(templates.SAMPLE_CONTACT)
    if body.contact is not None:
        row = session.scalar(select(Contact).where(Contact.external_id == body.contact))
        if row is None:
            raise InvalidField("contact", f"no contact {body.contact!r}")
        contact = contact_context(
            external_id=row.external_id,
            name=row.name,
            locale=row.locale,
            timezone=row.timezone,
            attributes=row.attributes,
        )
    topic = {"key": body.topic or "preview", "name": body.topic or "Preview"}
    if body.topic is not None:
        found = session.scalar(select(Topic).where(Topic.key == body.topic))
        if found is None:
            raise InvalidField("topic", f"no topic {body.topic!r}")
        topic = {"key": found.key, "name": found.name}
    base = public_url.rstrip("/")
    links = Links(
        preferences_url=f"{base}/preferences/PREVIEW", unsubscribe_url=f"{base}/unsubscribe/PREVIEW"
    )
    context = {"contact": contact, "topic": topic, "data": body.data}
    return Sample(context, links, body.locale or contact["locale"])


def variables(
    processes: RenderProcesses, key: str, variants: dict[str, dict[str, Any]]
) -> list[str]:
    """The variable paths the template's parts read (`data.order.number`), found in a render
    process. Raises TemplateError when that process overran or died."""
    return processes.variables(templates.doc(key, variants))


def preview(
    session: Session,
    processes: RenderProcesses,
    key: str,
    variants: dict[str, dict[str, Any]],
    body: PreviewIn,
    *,
    public_url: str,
) -> PreviewOut:
    """Raises InvalidField for an unknown contact or topic, a part that does not compile or one
    the sandbox stopped; a channel that fails for want of data carries its error instead."""
    found = sample(session, body, public_url=public_url)
    context, links, locale = found.context, found.links, found.locale
    try:
        attempts = processes.attempts(
            templates.doc(key, variants), locale=locale, context=context, links=links
        )
    except TemplateError as exc:  # does not compile, or overran its process's deadline
        raise templates.invalid(exc, "variants") from None
    rendered: dict[str, RenderedOut] = {}
    for attempt in attempts:
        if attempt.error is not None:
            if attempt.error.refused:  # stopped by the sandbox: a template to fix, not a preview
                raise templates.invalid(attempt.error, "variants")
            rendered[attempt.channel.value] = RenderedOut(error=str(attempt.error))
            continue
        out = attempt.rendered
        assert out is not None
        rendered[attempt.channel.value] = RenderedOut(
            subject=out.subject,
            text=out.text,
            html=out.html,
            body=json.loads(out.body) if out.body is not None else None,
        )
    return PreviewOut(locale=locale, channels=rendered)
