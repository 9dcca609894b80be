"""Console pages for templates: the list, and the editor of one language's parts with its
preview (the e-mail in a sandboxed frame at two widths, the SMS with its segment count, the
variables the template reads) and the latest versions. History, diff and restore are in
`template_history`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from hub.console import forms, template_from_campaign, template_history
from hub.console.auth import SessionsDep, Staff, StaffDep
from hub.console.email_frame import frame_headers
from hub.console.pages import back_to, page
from hub.console.template_from_campaign import Helping
from hub.console.template_person import People, advice
from hub.console.template_view import (
    DESCRIPTION,
    PARTS,
    Problems,
    Shown,
    problems_of,
    shown_preview,
)
from hub.db.models import Template
from hub.domain import StaffRole
from hub.fields import TOPIC_KEY
from hub.runtime import Runtime
from hub.schemas.templates import PreviewIn
from hub.services import template_edits, template_preview, template_versions
from hub.services.errors import Conflict, HubError
from hub.services.template_edits import Edit
from hub.templates import TemplateError
from hub.web.deps import RuntimeDep
from hub.web.forms import first

router = APIRouter(prefix="/console", include_in_schema=False)
router.include_router(template_history.router)
RECENT = 5  # versions listed on the editor; the history page has them all
KeyQuery = Annotated[str, Query(pattern=TOPIC_KEY)]
LOCALE = r"^([A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*)?$"
LocaleQuery = Annotated[str, Query(max_length=35, pattern=LOCALE)]
Typed = Annotated[str, Query(max_length=500)]  # checked by the page, which says what is wrong
KEY_PROBLEM = (
    "Template key: use lower-case letters, digits, dots, dashes and underscores, beginning "
    "with a letter or a digit, e.g. order-shipped"
)
LOCALE_PROBLEM = "Language: write a code such as ru, en-GB or pt-BR"
Number = Annotated[int, Query(ge=0, le=2**31 - 1)]


@router.get("/templates")
def template_list(request: Request, staff: StaffDep, runtime: RuntimeDep) -> Response:
    return _list(request, staff, runtime)


def _list(
    request: Request, staff: Staff, runtime: Runtime, *, typed: str = "", status: int = 200
) -> Response:
    problems = Problems("")
    if status != 200:
        problems.add("new-key", KEY_PROBLEM)
    with runtime.reads() as session:
        rows = list(session.scalars(select(Template).order_by(Template.key)))
    return page(
        request,
        "templates.html",
        "Templates",
        staff,
        status=status,
        section="templates",
        rows=rows,
        typed=typed,
        problems=problems,
    )


@dataclass
class Form:
    """What the editor shows in its fields: stored parts, or what was posted."""

    texts: dict[str, str] = field(default_factory=dict)
    version: int = 0
    contact: str = ""
    data: str = "{}"


@router.get("/templates/edit")
def template_edit(
    key: Typed,
    request: Request,
    *,
    staff: StaffDep,
    runtime: RuntimeDep,
    locale: Typed = "",
    saved: Number = 0,
    unchanged: bool = False,
    restored: Number = 0,
    part: str = "",
    line: str = "",
    campaign: str = "",
) -> Response:
    """One language's parts ("" is the default every other language falls back to). A key
    or language typed wrong into the forms that lead here is shown there, with why.

    From a campaign's dry run (`campaign`, `part`, `line`; older links only `#part`, the
    campaign then read from the Referer): the part's field focused, its failing line found
    by a fresh render for the preview's person with the campaign's data, and a way back.
    A bad `campaign`, `part` or `line` is ignored."""
    if not re.fullmatch(TOPIC_KEY, key):
        return _list(request, staff, runtime, typed=key, status=422)
    problems, typed = Problems(""), ""
    if len(locale) > 35 or not re.fullmatch(LOCALE, locale):
        problems.add("add-locale", LOCALE_PROBLEM)
        typed, locale = locale, ""
    if not campaign:
        campaign = template_from_campaign.referred_campaign(
            request.headers.get("referer"), request.url.netloc
        )
    with runtime.reads() as session:
        found = template_edits.edit_target(session, key)
        helping = template_from_campaign.opened(
            session,
            runtime.render_processes,
            found=found,
            asked={"key": key, "locale": locale, "campaign": campaign, "part": part, "line": line},
            render=staff.may(StaffRole.MARKETER),  # staff code with a contact's data
            focus=not (saved or unchanged or restored),
            public_url=runtime.settings.public_url,
        )
    form = Form()
    if helping.origin is not None:  # a preview then shows what the campaign would send
        form.data = json.dumps(helping.origin.data, indent=2, ensure_ascii=False)
    if found is not None:
        form.version = found.version
        form.texts = _texts(found.description, found.variants.get(locale, {}))
    notice = None
    if restored and saved:
        notice = f"Version {restored} is restored, as version {saved}."
    elif restored:
        notice = f"The template already had version {restored}'s content: nothing changed."
    elif saved:
        notice = f"Saved as version {saved}."
    elif unchanged:
        notice = "Nothing had changed, so no new version was saved."
    if problems:
        return _editor(
            request,
            staff,
            runtime,
            key=key,
            locale=locale,
            form=form,
            status=422,
            problems=problems,
            typed=typed,
            helping=helping,
        )
    return _editor(
        request,
        staff,
        runtime,
        key=key,
        locale=locale,
        form=form,
        notice=notice,
        helping=helping,
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
    campaign: str = "",
    part: str = "",
) -> Response:
    """Save, or preview. `campaign` and `part` (the editor was opened from a campaign's dry
    run) are kept through both, so the way back stays; a bad one is ignored."""
    # Both actions run staff code in the sandbox, a preview with any contact's data: a
    # marketer's work, not a viewer's.
    posted = await forms.posted(request, staff, sessions, StaffRole.MARKETER)
    helping = await run_in_threadpool(_helping, runtime, key, locale, campaign, part)
    form = Form(
        texts={name: first(posted, name) for name in ("description", *PARTS) if name in posted},
        contact=first(posted, "contact").strip(),
        data=first(posted, "data").strip() or "{}",
    )
    problems = Problems(locale)
    values = _values(form.texts, problems)
    version = first(posted, "version")
    form.version = int(version) if version.isdigit() and len(version) < 10 else 0
    if problems:
        return _editor(
            request,
            staff,
            runtime,
            key=key,
            locale=locale,
            form=form,
            status=422,
            problems=problems,
            helping=helping,
        )
    edit = Edit(key=key, locale=locale, base_version=form.version, values=values)
    if first(posted, "action") == "save":
        actor = forms.staff_actor(request, staff)
        try:
            saved, changed = await run_in_threadpool(_save, runtime, edit, actor)
        except (ValidationError, HubError) as exc:
            problems_of(exc, problems)
            if isinstance(exc, Conflict):  # shown again on the current version, edits kept
                with runtime.reads() as session:
                    rebased = template_edits.rebase(session, edit)
                form.version = rebased.base_version
                form.texts |= _texts_of(rebased.values)
            return _editor(
                request,
                staff,
                runtime,
                key=key,
                locale=locale,
                form=form,
                status=422,
                problems=problems,
                helping=helping,
            )
        done = f"saved={saved}" if changed else "unchanged=true"
        return back_to(f"/console/templates/edit?key={key}&locale={locale}&{done}{helping.keep()}")
    try:
        shown = await run_in_threadpool(_preview, runtime, edit, form, helping)
    except (ValidationError, HubError, ValueError) as exc:
        problems_of(exc, problems)
        return _editor(
            request,
            staff,
            runtime,
            key=key,
            locale=locale,
            form=form,
            status=422,
            problems=problems,
            helping=helping,
        )
    problems.extend(shown.problems)
    response = _editor(
        request,
        staff,
        runtime,
        key=key,
        locale=locale,
        form=form,
        preview=shown,
        problems=problems,
        helping=helping,
    )
    response.headers.update(frame_headers())
    return response


def _save(runtime: Runtime, edit: Edit, actor: Any) -> tuple[int, bool]:
    """Merged and checked in a read session first, so the write holds its lock briefly."""
    with runtime.reads() as session:
        template_edits.prepare(session, edit, runtime.render_processes)
    with runtime.sessions() as session:
        template, changed = template_edits.save(
            session, edit, runtime.render_processes, actor=actor
        )
        session.commit()
        return (template.version if template else 0), changed


def _helping(runtime: Runtime, key: str, locale: str, campaign: str, part: str) -> Helping:
    with runtime.reads() as session:
        found = template_edits.edit_target(session, key)
        return template_from_campaign.posted(
            session, found=found, key=key, locale=locale, campaign=campaign, part=part
        )


def _preview(runtime: Runtime, edit: Edit, form: Form, helping: Helping) -> Shown:
    """Raises ValidationError, HubError or ValueError (the data is not JSON) for the form.
    An empty Contact field previews a real person with attributes when there is one."""
    processes = runtime.render_processes
    locale = edit.locale
    with runtime.reads() as session:
        draft = template_edits.draft(session, edit)
        people = People(session)
        chosen = None
        if not form.contact:  # chosen for the draft's languages, which may be new
            chosen = people.choose(locale=locale, variants=sorted(draft.variants))
        asked = PreviewIn.model_validate(
            {
                "contact": form.contact or (chosen.external_id if chosen else None),
                "data": forms.form_json(form.data),
                "locale": locale or None,
                "topic": helping.origin.topic if helping.origin else None,
            }
        )
        rendered = template_preview.preview(
            session,
            processes,
            edit.key,
            draft.variants,
            asked,
            public_url=runtime.settings.public_url,
        )
        sample = template_preview.sample(session, asked, public_url=runtime.settings.public_url)
    try:
        paths = template_preview.variables(processes, edit.key, draft.variants)
    except TemplateError:  # its process overran: the preview is still worth showing
        paths = []
    shown = shown_preview(rendered, sample, paths)
    shown.chosen = chosen.why if chosen else None
    shown.advice = advice(
        failures=[c.error for c in shown.channels if c.error],
        missing=[v.path for v in shown.variables if not v.found],
        person=shown.person,
        people=people,
        person_id=asked.contact,
        from_campaign=helping.origin is not None,
    )
    return shown


def _values(texts: dict[str, str], problems: Problems) -> dict[str, Any]:
    """The posted fields as the template keeps them: browsers' CRLF as LF, blank as none,
    the webhook part as JSON."""
    values: dict[str, Any] = {}
    for name, typed in texts.items():
        text = typed.replace("\r\n", "\n")
        if not text.strip():
            values[name] = None
        elif name == "webhook_json":
            try:
                values[name] = forms.form_json(text)
            except ValueError as exc:
                problems.add("webhook_json", f"Webhook JSON is not valid JSON: {exc}")
        else:
            values[name] = text.strip() if name == "description" else text
    return values


def _texts(description: str | None, parts: dict[str, Any]) -> dict[str, str]:
    return _texts_of({"description": description} | {name: parts.get(name) for name in PARTS})


def _texts_of(values: Mapping[str, Any]) -> dict[str, str]:
    """Fields' values as their text boxes show them; the webhook's JSON indented."""
    texts = {}
    for name, value in values.items():
        if name == "webhook_json":
            texts[name] = "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)
        else:
            texts[name] = value or ""
    return texts


def _editor(
    request: Request,
    staff: Staff,
    runtime: Runtime,
    *,
    key: str,
    locale: str,
    form: Form,
    status: int = 200,
    problems: Problems | None = None,
    preview: Shown | None = None,
    notice: str | None = None,
    typed: str = "",
    helping: Helping | None = None,
) -> Response:
    with runtime.reads() as session:
        found = template_edits.edit_target(session, key)
        if helping is None:
            helping = template_from_campaign.plain(session, found=found, locale=locale)
        recent = (
            template_versions.page(session, found, before_id=None, limit=RECENT) if found else []
        )
        count = template_versions.count(session, found) if found else 0
    return page(
        request,
        "template_edit.html",
        f"Template {key}",
        staff,
        status=status,
        notice=notice,
        section="templates",
        key=key,
        locale=locale,
        locales=sorted(found.variants) if found else [],
        current=found,
        form=form,
        parts=PARTS,
        description=DESCRIPTION,
        problems=problems or Problems(locale),
        preview=preview,
        recent=recent,
        count=count,
        typed=typed,
        helping=helping,
    )
