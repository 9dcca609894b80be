"""/v1/templates: message parts per channel and locale, checked in the sandbox when saved;
every change a kept version that can be read and restored."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request, Response

from hub.api import errors
from hub.db.models import TemplateVersion
from hub.domain import Scope
from hub.fields import TOPIC_KEY
from hub.schemas.base import Page
from hub.schemas.templates import (
    TEMPLATE_EXAMPLE,
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateOut,
    TemplateVersionOut,
    TemplateVersionSummaryOut,
)
from hub.services import template_preview, template_versions, templates
from hub.web.deps import (
    AnyScope,
    CampaignsScope,
    RuntimeDep,
    SessionDep,
    actor_for,
    authenticated,
)
from hub.web.paging import CursorQuery, Limit, page_of, position

router = APIRouter(prefix="/v1/templates", tags=["templates"])

KeyPath = Annotated[
    str,
    Path(
        pattern=TOPIC_KEY,
        description="The template's key: a-z, 0-9, '_', '.', '-'; up to 100 characters",
    ),
]
VersionPath = Annotated[
    int, Path(ge=1, le=2**31 - 1, description="A version number from the template's history.")
]
NO_TEMPLATE = errors.not_found("No template has this key")
NO_VERSION = errors.not_found("No template has this key, or it has no such version")
TemplateBody = Annotated[
    TemplateIn,
    Body(
        openapi_examples={
            "order": {
                "summary": "E-mail and SMS, in English and German",
                "value": TEMPLATE_EXAMPLE,
            }
        }
    ),
]


@router.put(
    "/{key}",
    response_model=TemplateOut,
    operation_id="templates.upsert",
    summary="Create or replace a template",
    responses={
        200: {"description": "Replaced, or unchanged"},
        201: {"model": TemplateOut, "description": "Created"},
        **errors.conflict("Created concurrently by another request; retry"),
        **errors.TOO_LARGE,
    },
)
def put_template(
    key: KeyPath,
    body: TemplateBody,
    request: Request,
    response: Response,
    principal: CampaignsScope,
    db: SessionDep,
    runtime: RuntimeDep,
) -> Any:
    """Every part is compiled and tried in the sandbox first; a part it refuses is a 422
    naming it. A save that changes the content is a new version, kept with the key's name
    (`GET /v1/templates/{key}/versions`); saving the same content again changes nothing.
    Needs the `campaigns` scope."""
    template, created = templates.put(
        db, key, body, runtime.render_processes, actor=actor_for(request, principal)
    )
    db.commit()
    response.status_code = 201 if created else 200
    return template


@router.get(
    "/{key}",
    response_model=TemplateOut,
    operation_id="templates.get",
    summary="Read a template",
    dependencies=[Depends(authenticated)],
    responses=NO_TEMPLATE,
)
def get_template(key: KeyPath, db: SessionDep) -> Any:
    """The template's current parts and version. Any key but a `metrics`-only one."""
    return templates.get(db, key)


@router.get(
    "",
    response_model=Page[TemplateOut],
    operation_id="templates.list",
    summary="List templates",
    dependencies=[Depends(authenticated)],
)
def list_templates(db: SessionDep, limit: Limit = 100, cursor: CursorQuery = None) -> Any:
    """Every template, oldest first, a page at a time (`next_cursor`). Any key but a
    `metrics`-only one."""
    rows = templates.page(db, after_id=position(cursor), limit=limit + 1)
    return page_of(rows, limit, TemplateOut.model_validate)


@router.post(
    "/{key}/preview",
    response_model=PreviewOut,
    operation_id="templates.preview",
    summary="Render a template without sending it",
    responses={
        **NO_TEMPLATE,
        **errors.TOO_LARGE,
    },
)
def preview_template(
    key: KeyPath, body: PreviewIn, principal: AnyScope, db: SessionDep, runtime: RuntimeDep
) -> Any:
    """Render every channel for one contact (or a sample) and the given data; sends nothing.

    Naming a contact shows their name and attributes, so it needs the `contacts` scope; the
    check comes before the look-up, so the answer never tells whether the contact exists.
    Any key but a `metrics`-only one.
    """
    if body.contact is not None and not principal.allows(Scope.CONTACTS):
        raise HTTPException(403, "previewing for a named contact needs the 'contacts' scope")
    template = templates.get(db, key)
    return template_preview.preview(
        db,
        runtime.render_processes,
        key,
        template.variants,
        body,
        public_url=runtime.settings.public_url,
    )


@router.get(
    "/{key}/versions",
    response_model=Page[TemplateVersionSummaryOut],
    operation_id="templates.list_versions",
    summary="List a template's versions",
    dependencies=[Depends(authenticated)],
    responses=NO_TEMPLATE,
)
def list_versions(
    key: KeyPath, db: SessionDep, limit: Limit = 100, cursor: CursorQuery = None
) -> Any:
    """Every kept version, newest first: who saved it and when, without the parts. Any key
    but a `metrics`-only one."""
    template = templates.get(db, key)
    rows = template_versions.page(db, template, before_id=position(cursor), limit=limit + 1)
    return page_of(rows, limit, partial(_version, TemplateVersionSummaryOut))


@router.get(
    "/{key}/versions/{version}",
    response_model=TemplateVersionOut,
    operation_id="templates.get_version",
    summary="Read one version of a template",
    dependencies=[Depends(authenticated)],
    responses=NO_VERSION,
)
def get_version(key: KeyPath, version: VersionPath, db: SessionDep) -> Any:
    """The version's parts as they were saved. Any key but a `metrics`-only one."""
    found = template_versions.get(db, templates.get(db, key), version)
    return _version(TemplateVersionOut, found)


@router.post(
    "/{key}/versions/{version}/restore",
    response_model=TemplateOut,
    operation_id="templates.restore_version",
    summary="Restore an earlier version of a template",
    responses=NO_VERSION,
)
def restore_version(
    key: KeyPath,
    version: VersionPath,
    request: Request,
    principal: CampaignsScope,
    db: SessionDep,
    runtime: RuntimeDep,
) -> Any:
    """Make the version's parts and description the template's again, as a new version
    (version n stays as it was, and so does every later one). Checked in the sandbox as a
    save is. When the template already has that content, nothing changes. Needs the
    `campaigns` scope."""
    with runtime.reads() as session:
        template_versions.check(session, key, version, runtime.render_processes)
    template, _ = template_versions.restore(
        db, key, version, runtime.render_processes, actor=actor_for(request, principal)
    )
    db.commit()
    return template


V = TypeVar("V", TemplateVersionSummaryOut, TemplateVersionOut)


def _version(schema: type[V], row: TemplateVersion) -> V:
    return schema.model_validate(
        {
            "version": row.version,
            "description": row.description,
            "locales": sorted(row.variants),
            "saved_by": row.saved_by,
            "saved_at": row.saved_at,
            "variants": row.variants,
        }
    )
