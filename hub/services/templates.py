"""Stored templates: save (checked in the sandbox first), read, and turn into a TemplateDoc."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Template
from hub.schemas.templates import PartsIn, TemplateIn
from hub.services.errors import Conflict, InvalidField, NotFound
from hub.templates import Links, Parts, TemplateDoc, TemplateError
from hub.templates.isolation import EVERY, RenderProcesses


def contact_context(
    *,
    external_id: str,
    name: str | None,
    locale: str | None,
    timezone: str,
    attributes: dict[str, Any],
) -> dict[str, Any]:
    """What a template sees as `contact`: the same for a send and for a preview."""
    return {
        "external_id": external_id,
        "name": name,
        "locale": locale,
        "timezone": timezone,
        "attributes": attributes,
    }


# Who a template is tried on before it is kept, and whom a preview shows by default.
SAMPLE_CONTACT = contact_context(
    external_id="sample", name="Sample Person", locale=None, timezone="UTC", attributes={}
)
_SAMPLE_LINKS = Links(
    preferences_url="https://hub.invalid/preferences/SAMPLE",
    unsubscribe_url="https://hub.invalid/unsubscribe/SAMPLE",
)


def variants_of(given: dict[str, PartsIn]) -> dict[str, dict[str, Any]]:
    return {locale: parts.model_dump(exclude_none=True) for locale, parts in given.items()}


def doc(key: str, variants: dict[str, dict[str, Any]]) -> TemplateDoc:
    return TemplateDoc(key=key, variants={loc: Parts(**parts) for loc, parts in variants.items()})


def check(
    processes: RenderProcesses,
    key: str,
    variants: dict[str, dict[str, Any]],
    field: str,
    *,
    data: dict[str, Any] | None = None,
) -> None:
    """Compile every part and render each channel of each variant once, for a sample person
    and `data`, in a render process: a syntax error, a forbidden attribute or a template past
    a size, time or structure limit is a 422 naming the part. (Missing data is not: the
    sample cannot know it.) A template that passed is not tried again in this process."""
    fingerprint = json.dumps([key, variants], sort_keys=True, ensure_ascii=False)
    if fingerprint in processes.passed:
        return
    context = {"contact": SAMPLE_CONTACT, "topic": {"key": key, "name": key}, "data": data or {}}
    try:
        attempts = processes.attempts(
            doc(key, variants), locale=EVERY, context=context, links=_SAMPLE_LINKS
        )
    except TemplateError as exc:
        raise invalid(exc, field) from None
    for attempt in attempts:
        if attempt.error is not None and attempt.error.refused:
            raise invalid(attempt.error, field)
    processes.passed.add(fingerprint)


def invalid(exc: TemplateError, field: str) -> InvalidField:
    """The 422 for a part that failed: `field` is where the parts are in the request."""
    where = f"{field}.{exc.field.removeprefix('variants.')}"
    line = f" (line {exc.line})" if exc.line else ""
    return InvalidField(where, f"{exc.message}{line}")


def get(session: Session, key: str) -> Template:
    template = session.scalar(select(Template).where(Template.key == key))
    if template is None:
        raise NotFound(f"no template {key!r}")
    return template


def put(
    session: Session, key: str, data: TemplateIn, processes: RenderProcesses
) -> tuple[Template, bool]:
    variants = variants_of(data.variants)
    check(processes, key, variants, "variants")
    now = utcnow()
    template = session.scalar(select(Template).where(Template.key == key).with_for_update())
    if template is not None:
        if template.variants != variants or template.description != data.description:
            template.version += 1
        template.variants = variants
        template.description = data.description
        template.updated_at = now
        return template, False
    template = Template(
        key=key,
        description=data.description,
        variants=variants,
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(template)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"template {key!r} was created concurrently; retry") from None
    return template, True


def page(session: Session, *, after_id: int | None, limit: int) -> list[Template]:
    query = select(Template)
    if after_id is not None:
        query = query.where(Template.id > after_id)
    return list(session.scalars(query.order_by(Template.id).limit(limit)))
