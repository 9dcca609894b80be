"""/v1/templates: message parts per channel and locale, checked in the sandbox when saved."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from sqlalchemy import select

from hub.api.deps import CampaignsScope, RuntimeDep, SessionDep, authenticated
from hub.api.paging import CursorQuery, Limit, page_of, position
from hub.db.models import Contact, Topic
from hub.dispatch.compose import contact_context
from hub.domain import Channel
from hub.fields import TOPIC_KEY
from hub.schemas.base import Page
from hub.schemas.errors import ErrorOut
from hub.schemas.templates import PreviewIn, PreviewOut, RenderedOut, TemplateIn, TemplateOut
from hub.services import templates
from hub.services.errors import InvalidField
from templates import Links, TemplateError

router = APIRouter(prefix="/v1/templates", tags=["templates"])

KeyPath = Annotated[
    str, Path(pattern=TOPIC_KEY, description="a-z, 0-9, '_', '.', '-'; up to 100 characters")
]
SAMPLE_CONTACT = contact_context(
    external_id="sample", name="Sample Person", locale=None, timezone="UTC", attributes={}
)


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
    template, created = templates.put(db, key, body, runtime.renderer)
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


@router.post("/{key}/preview", response_model=PreviewOut, dependencies=[Depends(authenticated)])
def preview_template(key: KeyPath, body: PreviewIn, db: SessionDep, runtime: RuntimeDep) -> Any:
    """Render every channel for one contact (or a sample) and the given data; sends nothing."""
    template = templates.get(db, key)
    contact = dict(SAMPLE_CONTACT)
    if body.contact is not None:
        row = db.scalar(select(Contact).where(Contact.external_id == body.contact))
        if row is None:
            raise InvalidField("contact", f"no contact {body.contact!r}")
        contact = contact_context(
            external_id=row.external_id,
            name=row.name,
            locale=row.locale,
            timezone=row.timezone,
            attributes=row.attributes,
        )
    topic = {"key": body.topic or "preview", "name": body.topic or "Preview"}
    if body.topic is not None:
        found = db.scalar(select(Topic).where(Topic.key == body.topic))
        if found is None:
            raise InvalidField("topic", f"no topic {body.topic!r}")
        topic = {"key": found.key, "name": found.name}
    locale: str | None = body.locale or contact["locale"]
    compiled = runtime.renderer.compile(templates.doc(key, template.variants))
    base = runtime.settings.public_url.rstrip("/")
    links = Links(
        preferences_url=f"{base}/preferences/PREVIEW", unsubscribe_url=f"{base}/unsubscribe/PREVIEW"
    )
    context = {"contact": contact, "topic": topic, "data": body.data}
    rendered: dict[str, RenderedOut] = {}
    for channel in Channel:
        if channel not in compiled.channels():
            continue
        try:
            out = compiled.render(channel, locale=locale, context=context, links=links)
        except TemplateError as exc:
            rendered[channel.value] = RenderedOut(error=str(exc))
            continue
        rendered[channel.value] = RenderedOut(
            subject=out.subject,
            text=out.text,
            html=out.html,
            body=json.loads(out.body) if out.body is not None else None,
        )
    return PreviewOut(locale=locale, channels=rendered)
