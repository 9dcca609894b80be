"""Stored templates: save (checked in the sandbox first, each change a kept version), read,
and turn into a TemplateDoc."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Template, TemplateVersion
from hub.domain import ActorKind
from hub.schemas.templates import PartsIn, TemplateIn
from hub.services import audit
from hub.services.actor import Actor
from hub.services.errors import Conflict, InvalidField, NotFound
from hub.templates import Links, Parts, TemplateDoc, TemplateError, diff
from hub.templates.isolation import EVERY, RenderProcesses
from hub.templates.missing import spelt


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
    """The 422 for a part that failed: `field` is where the parts are in the request. Its
    `details[].field` keeps the path clients match on ("variants..email_html"); the message
    spells the default variant out ("variants.default.email_html: ...")."""
    where = f"{field}.{exc.field.removeprefix('variants.')}"
    line = f" (line {exc.line})" if exc.line else ""
    error = InvalidField(where, f"{exc.message}{line}")
    error.message = f"{spelt(where)}: {exc.message}{line}"
    error.args = (error.message,)
    return error


def get(session: Session, key: str) -> Template:
    template = session.scalar(select(Template).where(Template.key == key))
    if template is None:
        raise NotFound(f"no template {key!r}")
    return template


def put(
    session: Session, key: str, data: TemplateIn, processes: RenderProcesses, *, actor: Actor
) -> tuple[Template, bool]:
    """Create or replace a template (checked in the sandbox first); a change is a new version."""
    variants = variants_of(data.variants)
    check(processes, key, variants, "variants")
    return store(session, key, description=data.description, variants=variants, actor=actor)


def store(
    session: Session,
    key: str,
    *,
    description: str | None,
    variants: dict[str, dict[str, Any]],
    actor: Actor,
    expected_version: int | None = None,
    restored_from: int | None = None,
) -> tuple[Template, bool]:
    """Write checked content: a new template at version 1, or the next version of one whose
    content changed (unchanged content is no new version). Each version is kept, with who
    saved it, and the audit log says what changed. Raises Conflict when the template is no
    longer at `expected_version` (the version an edit was merged onto)."""
    now = utcnow()
    template = session.scalar(select(Template).where(Template.key == key).with_for_update())
    current = 0 if template is None else template.version
    if expected_version is not None and expected_version != current:
        raise Moved(f"template {key!r} was saved again (version {current}) meanwhile; retry")
    if template is not None:
        before = (template.description, template.variants)
        changed = diff.changed(before, (description, variants))
        if not changed:
            return template, False
        _keep_missing(session, template)
        template.version += 1
        template.variants = variants
        template.description = description
        template.updated_at = now
        keep(session, template, actor)
        old, new = diff.texts(*before), diff.texts(description, variants)
        audit.record(
            session,
            actor=actor,
            action=audit.Action.UPDATED if restored_from is None else audit.Action.RESTORED,
            resource=audit.Resource.TEMPLATE,
            key=key,
            before={"version": current} | {path: old.get(path) for path in changed},
            after={"version": template.version}
            | ({"restored_from": restored_from} if restored_from is not None else {})
            | {path: new.get(path) for path in changed},
        )
        return template, False
    template = Template(
        key=key,
        description=description,
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
    keep(session, template, actor)
    audit.record(
        session,
        actor=actor,
        action=audit.Action.CREATED,
        resource=audit.Resource.TEMPLATE,
        key=key,
        after={"version": 1} | diff.texts(description, variants),
    )
    return template, True


class Moved(Conflict):
    """The template changed between reading it and writing an edit merged onto it."""


def keep(session: Session, template: Template, actor: Actor) -> None:
    """The template's current content as its version row."""
    session.add(
        TemplateVersion(
            template_id=template.id,
            version=template.version,
            description=template.description,
            variants=template.variants,
            saved_by=saved_by(actor),
            saved_at=template.updated_at,
        )
    )


def _keep_missing(session: Session, template: Template) -> None:
    """A template written before versions were kept, or by hand, gets its current content
    kept before it changes, so no save loses what was there."""
    kept = session.scalar(
        select(TemplateVersion.id).where(
            TemplateVersion.template_id == template.id,
            TemplateVersion.version == template.version,
        )
    )
    if kept is None:
        session.add(
            TemplateVersion(
                template_id=template.id,
                version=template.version,
                description=template.description,
                variants=template.variants,
                saved_by=UNKNOWN_AUTHOR,
                saved_at=template.updated_at,
            )
        )


UNKNOWN_AUTHOR = "before versions were kept"  # as migration 0015 wrote them
_KINDS = {
    ActorKind.API_KEY: "API key",
    ActorKind.CLI: "command line",
    ActorKind.SYSTEM: "Hub",
}


def saved_by(actor: Actor) -> str:
    """Who saved a version, in words: a staff member's e-mail, "API key crm"..."""
    kind = _KINDS.get(actor.kind)
    return (actor.name if kind is None else f"{kind} {actor.name}")[:255]


def page(session: Session, *, after_id: int | None, limit: int) -> list[Template]:
    query = select(Template)
    if after_id is not None:
        query = query.where(Template.id > after_id)
    return list(session.scalars(query.order_by(Template.id).limit(limit)))
