"""Console pages for templates: the list, and the editor that saves or previews a locale."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select

from hub.console import forms
from hub.console.auth import SessionsDep, Staff, StaffDep
from hub.console.pages import back_to, page
from hub.db.models import Template
from hub.domain import StaffRole
from hub.fields import TOPIC_KEY
from hub.schemas.templates import PreviewIn, TemplateIn
from hub.services import template_preview, templates
from hub.services.errors import HubError
from hub.templates import TemplateError
from hub.web.deps import RuntimeDep
from hub.web.forms import first

router = APIRouter(prefix="/console", include_in_schema=False)
PARTS = (
    ("email_subject", "E-mail subject", 1),
    ("email_text", "E-mail text", 6),
    ("email_html", "E-mail HTML (optional)", 6),
    ("sms_body", "SMS", 2),
    ("voice_say", "Voice call script", 2),
)
KeyQuery = Annotated[str, Query(pattern=TOPIC_KEY)]
LocaleQuery = Annotated[
    str, Query(max_length=35, pattern=r"^([A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*)?$")
]


@router.get("/templates")
def template_list(request: Request, staff: StaffDep, runtime: RuntimeDep) -> Response:
    with runtime.reads() as session:
        rows = list(session.scalars(select(Template).order_by(Template.key)))
    return page(request, "templates.html", "Templates", staff, section="templates", rows=rows)


@router.get("/templates/edit")
def template_edit(
    key: KeyQuery, request: Request, staff: StaffDep, runtime: RuntimeDep, locale: LocaleQuery = ""
) -> Response:
    """One locale's parts ("" is the default every other language falls back to)."""
    with runtime.reads() as session:
        found = session.scalar(select(Template).where(Template.key == key))
    variants = dict(found.variants) if found else {}
    return _editor(
        request,
        staff,
        key,
        locale=locale,
        values=dict(variants.get(locale, {})),
        locales=sorted(variants),
    )


def _editor(
    request: Request,
    staff: Staff,
    key: str,
    *,
    locale: str,
    values: dict[str, Any],
    locales: list[str],
    **more: Any,
) -> Response:
    context: dict[str, Any] = {"contact": "", "data": "{}", "preview": None} | more
    return page(
        request,
        "template_edit.html",
        f"Template {key}",
        staff,
        section="templates",
        key=key,
        locale=locale,
        locales=locales,
        parts=PARTS,
        values=values,
        **context,
    )


@router.post("/templates/edit")
async def template_save(
    key: KeyQuery,
    request: Request,
    *,
    staff: StaffDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
    locale: LocaleQuery = "",
) -> Response:
    # Both actions run staff code in the sandbox, a preview with any contact's data: a
    # marketer's work, not a viewer's.
    form = await forms.posted(request, staff, sessions, StaffRole.MARKETER)
    values = {name: first(form, name) for name, _, _ in PARTS if first(form, name).strip()}
    contact, data = first(form, "contact").strip(), first(form, "data").strip() or "{}"
    with runtime.reads() as session:
        found = session.scalar(select(Template).where(Template.key == key))
    variants = dict(found.variants) if found else {}
    variants[locale] = values
    shown = {"contact": contact, "data": data}

    def refused(errors: list[str]) -> Response:  # the editor again, as posted, with why
        return _editor(
            request,
            staff,
            key,
            locale=locale,
            values=values,
            locales=sorted(variants),
            status=422,
            errors=errors,
            **shown,
        )

    if first(form, "action") == "save":
        try:
            with runtime.sessions() as session:
                templates.put(
                    session,
                    key,
                    TemplateIn.model_validate({"variants": variants}),
                    runtime.render_processes,
                )
                session.commit()
        except (ValidationError, HubError) as exc:
            return refused(forms.problems(exc))
        return back_to(f"/console/templates/edit?key={key}&locale={locale}")
    try:
        asked = PreviewIn.model_validate(
            {"contact": contact or None, "data": forms.form_json(data), "locale": locale or None}
        )
        with runtime.reads() as session:
            rendered = template_preview.preview(
                session,
                runtime.render_processes,
                key,
                variants,
                asked,
                public_url=runtime.settings.public_url,
            )
    except (ValidationError, HubError, TemplateError, ValueError) as exc:
        return refused([str(exc)] if isinstance(exc, TemplateError) else forms.problems(exc))
    preview = {
        channel: {"subject": out.subject, "text": out.error or out.text}
        for channel, out in rendered.channels.items()
    }
    return _editor(
        request,
        staff,
        key,
        locale=locale,
        values=values,
        locales=sorted(variants),
        preview=preview,
        **shown,
    )
