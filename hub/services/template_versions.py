"""A template's kept versions: the history, one version, and a restore (a new version with
an older one's content)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.db.models import Template, TemplateVersion
from hub.services import templates
from hub.services.actor import Actor
from hub.services.errors import NotFound
from hub.templates.isolation import RenderProcesses


def page(
    session: Session, template: Template, *, before_id: int | None, limit: int
) -> list[TemplateVersion]:
    """Newest first."""
    query = select(TemplateVersion).where(TemplateVersion.template_id == template.id)
    if before_id is not None:
        query = query.where(TemplateVersion.id < before_id)
    return list(session.scalars(query.order_by(TemplateVersion.id.desc()).limit(limit)))


def count(session: Session, template: Template) -> int:
    query = select(func.count()).where(TemplateVersion.template_id == template.id)
    return session.scalar(query) or 0


def get(session: Session, template: Template, version: int) -> TemplateVersion:
    found = session.scalar(
        select(TemplateVersion).where(
            TemplateVersion.template_id == template.id, TemplateVersion.version == version
        )
    )
    if found is None:
        raise NotFound(f"template {template.key!r} has no version {version}")
    return found


def before(session: Session, template: Template, version: int) -> TemplateVersion | None:
    """The kept version just before `version` (numbers kept from before versions were kept
    start higher than 1)."""
    return session.scalar(
        select(TemplateVersion)
        .where(TemplateVersion.template_id == template.id, TemplateVersion.version < version)
        .order_by(TemplateVersion.version.desc())
        .limit(1)
    )


def check(session: Session, key: str, version: int, processes: RenderProcesses) -> None:
    """Try version `version` in the sandbox as `restore` will, in a read session first, so
    the writing one finds it checked (on SQLite, a writing session holds the database's
    write lock from its first statement)."""
    kept = get(session, templates.get(session, key), version)
    templates.check(processes, key, kept.variants, "variants")


def restore(
    session: Session, key: str, version: int, processes: RenderProcesses, *, actor: Actor
) -> tuple[Template, bool]:
    """Make version `version`'s content the template's again, as a new version (checked in
    the sandbox first: the limits may have changed since it was saved). Restoring the
    content the template already has changes nothing: (template, False)."""
    template = templates.get(session, key)
    kept = get(session, template, version)
    was = template.version
    templates.check(processes, key, kept.variants, "variants")
    template, _ = templates.store(
        session,
        key,
        description=kept.description,
        variants=kept.variants,
        actor=actor,
        restored_from=version,
    )
    return template, template.version != was
