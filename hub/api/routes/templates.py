"""/v1/templates: message parts per channel and locale, checked in the sandbox when saved."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Response

from hub.domain import Scope
from hub.fields import TOPIC_KEY
from hub.schemas.base import Page
from hub.schemas.errors import ErrorOut
from hub.schemas.templates import PreviewIn, PreviewOut, TemplateIn, TemplateOut
from hub.services import template_preview, templates
from hub.web.deps import AnyScope, CampaignsScope, RuntimeDep, SessionDep, authenticated
from hub.web.paging import CursorQuery, Limit, page_of, position

router = APIRouter(prefix="/v1/templates", tags=["templates"])

KeyPath = Annotated[
    str, Path(pattern=TOPIC_KEY, description="a-z, 0-9, '_', '.', '-'; up to 100 characters")
]


@router.put(
    "/{key}",
    response_model=TemplateOut,
    responses={
        201: {"model": TemplateOut, "description": "Created"},
        409: {"model": ErrorOut, "description": "Created concurrently by another request; retry"},
    },
)
def put_template(
    key: KeyPath,
    body: TemplateIn,
    response: Response,
    _: CampaignsScope,
    db: SessionDep,
    runtime: RuntimeDep,
) -> Any:
    template, created = templates.put(db, key, body, runtime.render_processes)
    db.commit()
    response.status_code = 201 if created else 200
    return template


@router.get("/{key}", response_model=TemplateOut, dependencies=[Depends(authenticated)])
def get_template(key: KeyPath, db: SessionDep) -> Any:
    return templates.get(db, key)


@router.get("", response_model=Page[TemplateOut], dependencies=[Depends(authenticated)])
def list_templates(db: SessionDep, limit: Limit = 100, cursor: CursorQuery = None) -> Any:
    rows = templates.page(db, after_id=position(cursor), limit=limit + 1)
    return page_of(rows, limit, TemplateOut.model_validate)


@router.post("/{key}/preview", response_model=PreviewOut)
def preview_template(
    key: KeyPath, body: PreviewIn, principal: AnyScope, db: SessionDep, runtime: RuntimeDep
) -> Any:
    """Render every channel for one contact (or a sample) and the given data; sends nothing.

    Naming a contact shows their name and attributes, so it needs the `contacts` scope; the
    check comes before the look-up, so the answer never tells whether the contact exists.
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
