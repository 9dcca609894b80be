"""/v1/contacts: upsert, read, patch, erase, list with filters, and the timeline."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import AfterValidator, BeforeValidator

from hub.api import errors
from hub.domain import ContactKind, EventType
from hub.fields import TOPIC_KEY, Email, ExternalId, Phone, nfc_text, no_control_characters
from hub.schemas.base import Page
from hub.schemas.contacts import (
    CONTACT_EXAMPLE,
    CONTACT_OUT_EXAMPLE,
    ContactIn,
    ContactOut,
    ErasureOut,
)
from hub.schemas.teams import TEAM_KEY
from hub.schemas.timeline import EventOut
from hub.services import contact_care, contacts, timeline
from hub.services.contacts import Filters
from hub.web.deps import ContactsScope, RuntimeDep, SessionDep, actor_for
from hub.web.paging import CursorQuery, Limit, page_of, position

# Keys are spliced into a JSON path by the database driver; keep them to a safe alphabet.
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])

ExternalIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        # No control characters, and no surrounding spaces: the importer strips them, so
        # "x " here and "x" in a file would otherwise be two people.
        pattern=r"^[^\x00-\x1f\x7f\s](?:[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f\s])?$",
        description="The caller's own id for the person; compared in Unicode NFC.",
    ),
    BeforeValidator(nfc_text),  # last, so it runs first: the checks see what is stored
]


def check_attr_filter(item: str) -> str:
    """`key:value`; checked as a parameter, so a bad one is a 422 naming `attr[i]`."""
    key, sep, value = item.partition(":")
    if not sep or not ATTRIBUTE_KEY.fullmatch(key):
        raise ValueError(
            "write it as key:value with a key of letters, digits, '_' or '-', e.g. attr=plan:gold"
        )
    no_control_characters(value)
    return item


AttrFilter = Annotated[str, AfterValidator(check_attr_filter)]


NO_CONTACT = errors.not_found("No contact has this external_id (or it was erased)")
ContactBody = Annotated[
    ContactIn,
    Body(
        openapi_examples={
            "client": {"summary": "A client with an e-mail address", "value": CONTACT_EXAMPLE},
            "minimal": {
                "summary": "Only an id: every other field takes its default",
                "value": {},
            },
        }
    ),
]


@router.put(
    "/{external_id}",
    operation_id="contacts.upsert",
    summary="Create or replace a contact",
    response_model=ContactOut,
    responses={
        200: {
            "description": "Replaced",
            "content": {"application/json": {"example": CONTACT_OUT_EXAMPLE}},
        },
        201: {
            "model": ContactOut,
            "description": "Created",
            "content": {"application/json": {"example": CONTACT_OUT_EXAMPLE}},
        },
        **errors.TOO_LARGE,
    },
)
def put_contact(
    external_id: ExternalIdPath,
    body: ContactBody,
    request: Request,
    response: Response,
    principal: ContactsScope,
    db: SessionDep,
    runtime: RuntimeDep,
) -> Any:
    """Create or replace a contact: fields left out return to their defaults.

    201 when the contact is new, 200 when it was replaced. The change is written on the
    contact's timeline with the key's name as actor. Needs the `contacts` scope."""
    contact, created = contacts.put(
        db,
        external_id,
        body.model_dump(),
        actor_for(request, principal),
        allow_private_webhooks=runtime.settings.webhook_allow_private,
        care=body.care(),
    )
    db.commit()
    response.status_code = 201 if created else 200
    return contact_care.shown(db, [contact])[0]


@router.patch(
    "/{external_id}",
    operation_id="contacts.update",
    summary="Change some fields of a contact",
    response_model=ContactOut,
    responses={**NO_CONTACT, **errors.TOO_LARGE},
)
def patch_contact(
    external_id: ExternalIdPath,
    body: ContactIn,
    request: Request,
    principal: ContactsScope,
    db: SessionDep,
    runtime: RuntimeDep,
) -> Any:
    """Change only the fields sent; `attributes` merge key by key and a null removes a key.

    Fields left out keep their values; a field sent as null is cleared. The change is written
    on the contact's timeline. Needs the `contacts` scope."""
    contact = contacts.patch(
        db,
        external_id,
        body.given(),
        actor_for(request, principal),
        allow_private_webhooks=runtime.settings.webhook_allow_private,
        care=body.care(),
    )
    db.commit()
    return contact_care.shown(db, [contact])[0]


@router.get(
    "/{external_id}",
    operation_id="contacts.get",
    summary="Read a contact",
    response_model=ContactOut,
    responses=NO_CONTACT,
)
def get_contact(external_id: ExternalIdPath, _: ContactsScope, db: SessionDep) -> Any:
    """The contact's fields and attributes as stored (phones in E.164, e-mail domains in
    lower case). Needs the `contacts` scope."""
    return contact_care.shown(db, [contacts.get(db, external_id)])[0]


@router.delete(
    "/{external_id}",
    operation_id="contacts.delete",
    summary="Erase a contact",
    response_model=ErasureOut,
    responses=NO_CONTACT,
)
def erase_contact(
    external_id: ExternalIdPath,
    request: Request,
    principal: ContactsScope,
    db: SessionDep,
    runtime: RuntimeDep,
) -> Any:
    """Erase the person for good (the right to erasure).

    Personal data and timeline go; keyed hashes of their addresses stay on the suppression
    list so a re-import cannot make them contactable for marketing. Needs the `contacts`
    scope."""
    report = contacts.erase(db, external_id, actor_for(request, principal), runtime.hasher)
    db.commit()
    return report


@router.get(
    "",
    operation_id="contacts.list",
    summary="List contacts, with filters",
    response_model=Page[ContactOut],
)
def list_contacts(
    _: ContactsScope,
    db: SessionDep,
    kind: Annotated[
        ContactKind | None, Query(description="Only clients, or only employees.")
    ] = None,
    topic: Annotated[
        str | None, Query(pattern=TOPIC_KEY, description="Subscribed to this topic (its key)")
    ] = None,
    email: Annotated[
        Email | None, Query(description="Exact address, domain case-insensitive")
    ] = None,
    phone: Annotated[Phone | None, Query(description="Any international spelling")] = None,
    attr: Annotated[
        list[AttrFilter],
        Query(
            max_length=20, description="Attribute filter `key:value`, repeatable; all must match."
        ),
    ] = [],  # noqa: B006
    owner: Annotated[
        ExternalId | None,
        Query(
            description="The clients of this employee (their external_id); an unknown one is "
            "a 422 naming `owner`."
        ),
    ] = None,
    team: Annotated[
        str | None,
        Query(pattern=TEAM_KEY, description="Members of this team (its key); unknown: 422."),
    ] = None,
    limit: Limit = 100,
    cursor: CursorQuery = None,
) -> Any:
    """Oldest first, a page at a time (`next_cursor`); every filter given must match.
    `owner=` lists a manager's clients. Needs the `contacts` scope."""
    pairs = tuple((key, value) for key, _, value in (item.partition(":") for item in attr))
    filters = Filters(
        kind=kind, topic=topic, email=email, phone=phone, attributes=pairs, owner=owner, team=team
    )
    rows = contacts.page(db, filters, after_id=position(cursor), limit=limit + 1)
    found = page_of(rows, limit, lambda contact: contact)
    return Page[ContactOut](
        items=contact_care.shown(db, found.items), next_cursor=found.next_cursor
    )


@router.get(
    "/{external_id}/timeline",
    operation_id="contacts.timeline",
    summary="Read a contact's timeline",
    response_model=Page[EventOut],
    responses=NO_CONTACT,
)
def get_timeline(
    external_id: ExternalIdPath,
    _: ContactsScope,
    db: SessionDep,
    type: Annotated[
        list[EventType], Query(description="Only events of these types (repeatable).")
    ] = [],  # noqa: B006
    limit: Limit = 100,
    cursor: CursorQuery = None,
) -> Any:
    """Every change and contact, newest first.

    Each message and its outcome, each preference change, unsubscribe and refusal, with
    time, channel, actor and reason: the contact's record, never lost. Needs the `contacts`
    scope."""
    contact = contacts.get(db, external_id)
    rows = timeline.page(db, contact.id, before_id=position(cursor), limit=limit + 1, types=type)
    return page_of(rows, limit, EventOut.model_validate)
