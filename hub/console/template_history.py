"""Console pages for a template's past: every kept version, what changed between two of
them (part by part, line by line), and a restore that makes an old version the newest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hub.console import forms
from hub.console.auth import SessionsDep, Staff, StaffDep
from hub.console.pages import back_to, page
from hub.console.template_view import DESCRIPTION, PARTS
from hub.db.models import Template
from hub.domain import StaffRole
from hub.fields import TOPIC_KEY
from hub.runtime import Runtime
from hub.services import template_versions, templates
from hub.services.actor import Actor
from hub.services.errors import HubError, NotFound
from hub.templates import diff
from hub.web.deps import RuntimeDep

router = APIRouter(include_in_schema=False)
PAGE = 50
KeyQuery = Annotated[str, Query(pattern=TOPIC_KEY)]
Version = Annotated[int, Query(ge=1, le=2**31 - 1)]
Before = Annotated[int | None, Query(ge=1, le=2**63 - 1)]


@router.get("/templates/history")
def history(
    key: KeyQuery, request: Request, staff: StaffDep, runtime: RuntimeDep, before: Before = None
) -> Response:
    """Every version, newest first, a page at a time; two chosen ones compared."""
    with runtime.reads() as session:
        template = _template(session, key)
        if template is None:
            return _missing(request, staff, key)
        rows = template_versions.page(session, template, before_id=before, limit=PAGE + 1)
        count = template_versions.count(session, template)
    older = rows[PAGE - 1].id if len(rows) > PAGE else None
    return page(
        request,
        "template_history.html",
        f"History of {key}",
        staff,
        section="templates",
        key=key,
        current=template,
        rows=rows[:PAGE],
        count=count,
        older=older,
    )


@router.get("/templates/diff")
def compare(
    key: KeyQuery,
    request: Request,
    *,
    staff: StaffDep,
    runtime: RuntimeDep,
    a: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    b: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    """What changed from version `a` (the one before `b` by default) to version `b` (the
    current one by default)."""
    with runtime.reads() as session:
        template = _template(session, key)
        if template is None:
            return _missing(request, staff, key)
        try:
            new = template_versions.get(session, template, b or template.version)
            old = (
                template_versions.get(session, template, a)
                if a
                else template_versions.before(session, template, new.version)
            )
        except NotFound as exc:
            return _missing(request, staff, key, exc.message)
        if old is None:
            return _missing(request, staff, key, f"Version {new.version} is the first kept.")
        kept = template_versions.page(session, template, before_id=None, limit=500)
    parts = diff.compare((old.description, old.variants), (new.description, new.variants))
    return page(
        request,
        "template_diff.html",
        f"Template {key}: version {old.version} to {new.version}",
        staff,
        section="templates",
        key=key,
        current=template,
        old=old,
        new=new,
        parts=parts,
        versions=[v.version for v in kept],
        called=_called,
    )


@router.post("/templates/restore")
async def restore(
    key: KeyQuery,
    version: Version,
    request: Request,
    *,
    staff: StaffDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    await forms.posted(request, staff, sessions, StaffRole.MARKETER)
    actor = forms.staff_actor(request, staff)
    try:
        saved, changed = await run_in_threadpool(_restore, runtime, key, version, actor)
    except HubError as exc:
        with runtime.reads() as session:
            template = _template(session, key)
        return page(
            request,
            "template_history.html",
            f"History of {key}",
            staff,
            status=422 if not isinstance(exc, NotFound) else 404,
            section="templates",
            key=key,
            current=template,
            rows=[],
            count=0,
            older=None,
            errors=[f"Version {version} could not be restored: {exc.message}"],
        )
    done = f"restored={version}" + (f"&saved={saved}" if changed else "")
    return back_to(f"/console/templates/edit?key={key}&{done}")


def _restore(runtime: Runtime, key: str, version: int, actor: Actor) -> tuple[int, bool]:
    """Checked in a read session first, so the write holds its lock briefly."""
    with runtime.reads() as session:
        template_versions.check(session, key, version, runtime.render_processes)
    with runtime.sessions() as session:
        template, changed = template_versions.restore(
            session, key, version, runtime.render_processes, actor=actor
        )
        session.commit()
        return template.version, changed


def _template(session: Session, key: str) -> Template | None:
    try:
        return templates.get(session, key)
    except NotFound:
        return None


def _missing(request: Request, staff: Staff, key: str, why: str | None = None) -> Response:
    return page(
        request,
        "listing.html",
        "Not found",
        staff,
        status=404,
        section="templates",
        errors=[why or f"There is no template {key!r}."],
        headers=[],
        rows=[],
    )


def _called(part: diff.PartDiff) -> str:
    """A part's name in words: "SMS text, language ru", "Description"."""
    if part.locale is None:
        return DESCRIPTION.called
    known = PARTS.get(part.part)
    name = known.called if known else part.part
    return f"{name}, {'language ' + part.locale if part.locale else 'default language'}"
