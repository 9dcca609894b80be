"""POST /v1/contacts/import: a CSV or NDJSON body, streamed into the importer as it arrives,
optionally subscribing every imported person to a topic."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, HTTPException, Query, Request

from hub.api import errors
from hub.domain import Channel
from hub.fields import TOPIC_KEY
from hub.schemas.imports import ImportReport
from hub.services.imports import Subscriber, format_for, import_contacts, subscribe
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
        "timezone, attributes (a JSON object), attr.<key> columns, owner (a client's "
        "employee, by external_id) and teams (team keys separated by | or ;). An empty cell "
        "leaves the field as it is. NDJSON: one JSON object per line; null clears a field "
        "(`teams` is a list).",
        "content": {
            "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
            "application/x-ndjson": {"schema": {"type": "string"}, "example": NDJSON_EXAMPLE},
        },
    }
}


SubscribeTopic = Annotated[
    str | None,
    Query(
        pattern=TOPIC_KEY,
        description="Subscribe every imported person to this topic (its key), through the same "
        "rules as `PUT /v1/contacts/{external_id}/subscriptions/{topic}`.",
        examples=["news"],
    ),
]
SubscribeChannels = Annotated[
    list[Channel],
    Query(
        max_length=4,
        description="With `subscribe_topic`: the channels, in order of preference, repeated "
        "(`subscribe_channels=email&subscribe_channels=sms`). Each person gets those they have "
        "an address for that is not suppressed; none given: the topic's default channels.",
    ),
]
ConsentSource = Annotated[
    str | None,
    Query(
        max_length=subscribe.MAX_SOURCE,
        description="Required with `subscribe_topic`: where these people agreed to hear from "
        "you, kept as each subscription's consent evidence and on its timeline event.",
        examples=["spring-webinar"],
    ),
]
ConsentNote = Annotated[
    str | None,
    Query(
        max_length=subscribe.MAX_NOTE,
        description="With `subscribe_topic`: a note kept on each consent event (its reason).",
        examples=["Ticked 'send me news' on the sign-up form"],
    ),
]


@router.post(
    "/import",
    summary="Import contacts from CSV or NDJSON",
    operation_id="contacts.import",
    response_model=ImportReport,
    openapi_extra=BODY,
    responses={
        415: errors.problem("Not CSV or NDJSON (also application/jsonl, application/x-jsonlines)"),
        422: errors.problem(
            "Unknown CSV column, the body is not UTF-8 from some line on, or the subscribe "
            "option names an unknown topic, a channel it does not allow, or no consent source"
        ),
    },
)
async def import_contacts_route(
    request: Request,
    principal: ContactsScope,
    db: SessionDep,
    runtime: RuntimeDep,
    subscribe_topic: SubscribeTopic = None,
    subscribe_channels: SubscribeChannels = [],  # noqa: B006
    consent_source: ConsentSource = None,
    consent_note: ConsentNote = None,
) -> Any:
    """Create or update contacts in bulk. Given fields change, the rest stay; `attributes`
    merge key by key. Good rows are kept, each bad one reported with its line, field and reason.
    Rows are committed in batches as they arrive, so an error part-way keeps earlier batches.

    With `subscribe_topic`, every imported person is also subscribed to that topic (with
    `consent_source` and `consent_note` on the consent event of their timeline), checked as a
    subscription through the API is; a person who cannot be subscribed (no usable channel,
    a suppressed address, another audience, their own recent unsubscribe) is imported but
    counted as failed, with an error on the field `subscription`. The body is not capped in
    size. Needs the `contacts` scope."""
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
        with runtime.reads() as session:
            option = subscribe.checked(
                session,
                topic=subscribe_topic,
                channels=subscribe_channels,
                consent_source=consent_source,
                note=consent_note,
            )
        subscriber = None
        if option is not None:
            subscriber = Subscriber(
                option,
                actor=actor,
                hasher=runtime.hasher,
                cool_down=dt.timedelta(days=settings.cool_down_days),
            )
        return import_contacts(
            runtime.sessions,
            chunks(),
            fmt=fmt,
            actor=actor,
            allow_private_webhooks=settings.webhook_allow_private,
            batch_size=settings.import_batch_size,
            subscriber=subscriber,
        )

    return await anyio.to_thread.run_sync(run)
