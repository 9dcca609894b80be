"""/v1/audit: who changed which configuration, when, and what it was before and after."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from hub.fields import Text255
from hub.schemas.audit import AuditEntryOut
from hub.schemas.base import Page
from hub.services import audit
from hub.web.deps import AdminScope, SessionDep
from hub.web.paging import CursorQuery, Limit, page_of, position

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get(
    "",
    response_model=Page[AuditEntryOut],
    operation_id="audit.list",
    summary="List audit log entries",
)
def list_entries(
    _: AdminScope,
    db: SessionDep,
    resource: Annotated[
        audit.Resource | None, Query(description="Only changes to this kind of resource.")
    ] = None,
    key: Annotated[
        Text255 | None,  # no NUL or control character: PostgreSQL refuses NUL in text
        Query(
            description="Only changes to this one (an e-mail, a key's name, a topic key, an "
            "endpoint's id); usually with `resource`.",
        ),
    ] = None,
    limit: Limit = 100,
    cursor: CursorQuery = None,
) -> Any:
    """Every change staff, API keys and the CLI made to staff users, API keys, event
    endpoints, templates, topics, segments and campaigns: who, when, the action, and the
    fields before and after, newest first. Secrets (passwords, key hashes, signing secrets)
    are never kept. Needs the `admin` scope."""
    rows = audit.page(db, before_id=position(cursor), limit=limit + 1, resource=resource, key=key)
    return page_of(rows, limit, AuditEntryOut.model_validate)
