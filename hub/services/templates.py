"""Stored templates: save (checked in the sandbox first), read, and turn into a TemplateDoc."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Template
from hub.schemas.templates import PartsIn, TemplateIn
from hub.services.errors import Conflict, InvalidField, NotFound
from templates import Parts, Renderer, TemplateDoc, TemplateError


def variants_of(given: dict[str, PartsIn]) -> dict[str, dict[str, Any]]:
    return {locale: parts.model_dump(exclude_none=True) for locale, parts in given.items()}


def doc(key: str, variants: dict[str, dict[str, Any]]) -> TemplateDoc:
    return TemplateDoc(key=key, variants={loc: Parts(**parts) for loc, parts in variants.items()})


def check(renderer: Renderer, key: str, variants: dict[str, dict[str, Any]], field: str) -> None:
    """Compile every part in the sandbox; a syntax error is a 422 naming the part."""
    try:
        renderer.check(doc(key, variants))
    except TemplateError as exc:
        where = f"{field}.{exc.field.removeprefix('variants.')}"
        line = f" (line {exc.line})" if exc.line else ""
        raise InvalidField(where, f"{exc.message}{line}") from None


def get(session: Session, key: str) -> Template:
    template = session.scalar(select(Template).where(Template.key == key))
    if template is None:
        raise NotFound(f"no template {key!r}")
    return template


def put(session: Session, key: str, data: TemplateIn, renderer: Renderer) -> tuple[Template, bool]:
    variants = variants_of(data.variants)
    check(renderer, key, variants, "variants")
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
