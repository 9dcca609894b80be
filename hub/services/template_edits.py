"""An edit of one language's parts, as the console's form sends it, merged onto the template
as it is now: only the fields the person changed are written. A part or a field the form did
not show (another language, the description, a part a newer Hub knows) is kept, and so is a
save someone made after the form was opened, unless both changed the same field: then the
edit is refused, naming the field, and nothing is lost either way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import Template, TemplateVersion
from hub.schemas.templates import TemplateIn
from hub.services import templates
from hub.services.actor import Actor
from hub.services.errors import Conflict, InvalidField
from hub.templates import diff
from hub.templates.isolation import RenderProcesses

DESCRIPTION = "description"
PARTS = ("email_subject", "email_html", "email_text", "sms_body", "voice_say", "webhook_json")


@dataclass(frozen=True, slots=True)
class Edit:
    key: str
    locale: str  # "" is the default every other language falls back to
    base_version: int  # the version the form showed; 0 for a template not written yet
    values: Mapping[str, Any]  # "description" or a part -> its new value, None for empty


@dataclass(frozen=True, slots=True)
class Merged:
    description: str | None
    variants: dict[str, dict[str, Any]]
    version: int  # the template's version the edit was merged onto; 0: none yet
    changed: bool


class EditConflict(Conflict):
    """Someone else changed a field this edit changes too, after the form was opened."""


def merge(session: Session, edit: Edit) -> Merged:
    """The template as it would be with `edit`, validated as the API validates a PUT.

    Raises:
        EditConflict: naming each field changed both here and by a save since the form's
            version.
        InvalidField: the default language is missing (every other falls back to it).
        pydantic.ValidationError: a value the API would refuse, named by its path.
    """
    template = edit_target(session, edit.key)
    now = _content(template)
    description, variants, clashes = _applied(
        now, _base(session, template, edit.base_version), edit
    )
    if clashes:
        raise _clash(session, template, edit, clashes)
    return _checked(template, now, description, variants)


def draft(session: Session, edit: Edit) -> Merged:
    """The template as the form shows it, the rest as it is now, for a preview: every field
    the form sends is taken as written, whatever happened since it was opened.

    Raises: as `merge`, but never EditConflict.
    """
    template = edit_target(session, edit.key)
    now = _content(template)
    description, variants, _ = _applied(now, now, edit)
    return _checked(template, now, description, variants)


def _applied(
    now: Content, was: Content, edit: Edit
) -> tuple[str | None, dict[str, dict[str, Any]], list[str]]:
    """`now` with each field the edit changed against `was`; and the fields that changed
    since `was` to something else than the edit's value (nothing applied for those)."""
    description = now[0]
    variants = {locale: dict(parts) for locale, parts in now[1].items()}
    parts = variants.get(edit.locale, {})
    clashes = []
    for field, value in edit.values.items():
        before, current = _field(was, edit.locale, field), _field(now, edit.locale, field)
        if _same(value, before):
            continue  # not edited here: whatever it is now stays
        if not _same(current, before) and not _same(value, current):
            clashes.append(field)
        elif field == DESCRIPTION:
            description = value
        elif value is None:
            parts.pop(field, None)
        else:
            parts[field] = value
    if parts or not edit.locale:
        variants[edit.locale] = parts
    else:
        variants.pop(edit.locale, None)  # a language with every part emptied is removed
    return description, variants, clashes


def _checked(
    template: Template | None,
    now: Content,
    description: str | None,
    variants: dict[str, dict[str, Any]],
) -> Merged:
    if "" not in variants:
        raise InvalidField(
            "variants", "write the default language first: the others fall back to it"
        )
    checked = TemplateIn.model_validate({"description": description, "variants": variants})
    merged = templates.variants_of(checked.variants)
    changed = bool(diff.changed(now, (checked.description, merged)))
    version = 0 if template is None else template.version
    return Merged(checked.description, merged, version, changed)


def prepare(session: Session, edit: Edit, processes: RenderProcesses) -> Merged:
    """`merge`, then the sandbox's check: in a read session before `save`, which then finds
    the content checked (a writing session on SQLite holds the write lock from its start).

    Raises: as `merge`, and InvalidField for a part the sandbox refuses.
    """
    merged = merge(session, edit)
    if merged.changed:
        templates.check(processes, edit.key, merged.variants, "variants")
    return merged


def save(
    session: Session, edit: Edit, processes: RenderProcesses, *, actor: Actor
) -> tuple[Template | None, bool]:
    """Merge `edit`, check it and store it as the next version; (template, whether it
    changed). Nothing changed leaves the template (None if there is none yet) as it was.

    Raises: as `prepare`, and Conflict when a save lands between the merge and the write.
    """
    merged = prepare(session, edit, processes)
    if not merged.changed:
        return edit_target(session, edit.key), False
    template, _ = templates.store(
        session,
        edit.key,
        description=merged.description,
        variants=merged.variants,
        actor=actor,
        expected_version=merged.version,
    )
    return template, True


def rebase(session: Session, edit: Edit) -> Edit:
    """The edit as if begun on the current version: each field it changed keeps its new
    value, every other shows what it is now. A refused form is shown again this way, so
    saving it again keeps both the person's changes and everyone else's."""
    template = edit_target(session, edit.key)
    now, was = _content(template), _base(session, template, edit.base_version)
    values = {
        field: value
        if not _same(value, _field(was, edit.locale, field))
        else _field(now, edit.locale, field)
        for field, value in edit.values.items()
    }
    version = 0 if template is None else template.version
    return Edit(key=edit.key, locale=edit.locale, base_version=version, values=values)


def edit_target(session: Session, key: str) -> Template | None:
    return session.scalar(select(Template).where(Template.key == key))


Content = tuple[str | None, Mapping[str, Mapping[str, Any]]]


def _content(template: Template | None) -> Content:
    return (None, {}) if template is None else (template.description, template.variants)


def _base(session: Session, template: Template | None, version: int) -> Content:
    """What the form showed: the kept version it names. A version not kept (a template
    written before versions were) counts as the current content."""
    if template is None or version == 0:
        return None, {}
    if version == template.version:
        return _content(template)
    kept = session.scalar(
        select(TemplateVersion).where(
            TemplateVersion.template_id == template.id, TemplateVersion.version == version
        )
    )
    return _content(template) if kept is None else (kept.description, kept.variants)


def _field(content: Content, locale: str, field: str) -> Any:
    if field == DESCRIPTION:
        return content[0]
    return content[1].get(locale, {}).get(field)


def _same(a: Any, b: Any) -> bool:
    """Equal once a browser's CRLF line ends and empty text are read as the form means them."""
    return bool(_normal(a) == _normal(b))


def _normal(value: Any) -> Any:
    if isinstance(value, str):
        value = value.replace("\r\n", "\n")
        return value if value.strip() else None
    return value


def _clash(
    session: Session, template: Template | None, edit: Edit, fields: list[str]
) -> EditConflict:
    """Who changed each clashing field first after the form's version, and in which version."""
    later: list[TemplateVersion] = []
    if template is not None:
        later = list(
            session.scalars(
                select(TemplateVersion)
                .where(
                    TemplateVersion.template_id == template.id,
                    TemplateVersion.version > edit.base_version,
                )
                .order_by(TemplateVersion.version)
            )
        )
    was = _base(session, template, edit.base_version)
    details = []
    for name in fields:
        path = name if name == DESCRIPTION else f"variants.{edit.locale}.{name}"
        before = _field(was, edit.locale, name)
        first = next(
            (
                v
                for v in later
                if not _same(_field((v.description, v.variants), edit.locale, name), before)
            ),
            None,
        )
        since = f"the version {edit.base_version} you opened" if edit.base_version else "you began"
        by = f" by {first.saved_by} in version {first.version}" if first else ""
        message = (
            f"changed{by} after {since}; your text is kept below: "
            "compare it with the current version, then save again to keep yours"
        )
        details.append({"field": path, "message": message})
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return EditConflict(summary, details=details)
