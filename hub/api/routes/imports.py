"""POST /v1/contacts/import: a CSV or NDJSON body, streamed into the importer as it arrives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, HTTPException, Request

from hub.schemas.imports import ImportReport
from hub.services.imports import format_for, import_contacts
from hub.web.deps import ContactsScope, RuntimeDep, SessionDep, actor_for

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])

CSV_EXAMPLE = (
    "external_id,name,email,phone,timezone,attr.plan\n"
    "crm-1,Ann Lee,ann@example.com,+44 20 7946 0958,Europe/London,gold\n"
)
NDJSON_EXAMPLE = (
    '{"external_id": "crm-1", "email": "ann@example.com", "attributes": {"plan": "gold"}}\n'
    '{"external_id": "crm-2", "phone": "+14155552671", "locale": "en-US"}\n'
)
BODY = {
    "requestBody": {
        "required": True,
        "description": "UTF-8 text, streamed: any size. CSV needs a header row naming the "
        "columns: external_id (required), kind, name, email, phone, webhook_url, locale, "
        "timezone, attributes (a JSON object) and attr.<key> columns. An empty cell leaves the "
        "field as it is. NDJSON: one JSON object per line; null clears a field.",
        "content": {
            "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
            "application/x-ndjson": {"schema": {"type": "string"}, "example": NDJSON_EXAMPLE},
        },
    }
}


@router.post(
    "/import",
    summary="Import contacts from CSV or NDJSON",
    response_model=ImportReport,
    openapi_extra=BODY,
    responses={
        415: {"description": "Not CSV or NDJSON (also application/jsonl, application/x-jsonlines)"},
        422: {"description": "Unknown CSV column, or the body is not UTF-8 from some line on"},
    },
)
async def import_contacts_route(
    request: Request, principal: ContactsScope, db: SessionDep, runtime: RuntimeDep
) -> Any:
    """Create or update contacts in bulk. Given fields change, the rest stay; `attributes`
    merge key by key. Good rows are kept, each bad one reported with its line, field and reason.
    Rows are committed in batches as they arrive, so an error part-way keeps earlier batches."""
    content_type = request.headers.get("content-type")
    if not content_type:
        raise HTTPException(415, "send Content-Type: text/csv or application/x-ndjson")
    try:
        fmt = format_for(content_type, None)
    except ValueError as exc:
        raise HTTPException(415, str(exc)) from None
    body = request.stream().__aiter__()

    async def next_chunk() -> bytes | None:
        try:
            return await anext(body)
        except StopAsyncIteration:
            return None

    def chunks() -> Iterator[bytes]:
        while (chunk := anyio.from_thread.run(next_chunk)) is not None:
            if chunk:
                yield chunk

    settings = runtime.settings
    actor = actor_for(request, principal, source="api.import")

    def run() -> ImportReport:
        # Authentication is done: give its connection back rather than hold it (idle in a
        # transaction, on PostgreSQL) for as long as the import runs.
        db.close()
        return import_contacts(
            runtime.sessions,
            chunks(),
            fmt=fmt,
            actor=actor,
            allow_private_webhooks=settings.webhook_allow_private,
            batch_size=settings.import_batch_size,
        )

    return await anyio.to_thread.run_sync(run)
