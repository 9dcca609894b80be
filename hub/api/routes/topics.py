"""/v1/topics: what people can subscribe to."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from hub.api import errors
from hub.domain import TopicCategory
from hub.fields import TOPIC_KEY
from hub.schemas.base import Page
from hub.schemas.topics import TOPIC_EXAMPLE, TOPIC_OUT_EXAMPLE, TopicIn, TopicOut
from hub.services import topics
from hub.web.deps import AdminScope, SessionDep, actor_for, authenticated
from hub.web.paging import CursorQuery, Limit, page_of, position

router = APIRouter(prefix="/v1/topics", tags=["topics"])

KeyPath = Annotated[
    str,
    Path(
        pattern=TOPIC_KEY,
        description="The topic's key: a-z, 0-9, '_', '.', '-'; up to 100 characters",
    ),
]
NO_TOPIC = errors.not_found("No topic has this key")
TopicBody = Annotated[
    TopicIn,
    Body(
        openapi_examples={
            "marketing": {
                "summary": "A newsletter: at most one a day and two a week per person",
                "value": TOPIC_EXAMPLE,
            },
            "transactional": {
                "summary": "Order updates: sent whatever the hour or the count",
                "value": {
                    "name": "Order updates",
                    "audience": "clients",
                    "allowed_channels": ["email", "sms", "webhook"],
                    "default_channels": ["email"],
                    "category": "transactional",
                },
            },
        }
    ),
]


@router.put(
    "/{key}",
    operation_id="topics.upsert",
    summary="Create or replace a topic",
    response_model=TopicOut,
    responses={
        200: {
            "description": "Replaced",
            "content": {"application/json": {"example": TOPIC_OUT_EXAMPLE}},
        },
        201: {
            "model": TopicOut,
            "description": "Created",
            "content": {"application/json": {"example": TOPIC_OUT_EXAMPLE}},
        },
        **errors.conflict("Created concurrently by another request; retry"),
        **errors.TOO_LARGE,
    },
)
def put_topic(
    key: KeyPath,
    body: TopicBody,
    request: Request,
    response: Response,
    principal: AdminScope,
    db: SessionDep,
) -> Any:
    """Every field is replaced; an omitted one takes its default. `category` decides the
    marketing rules (legal window for SMS and calls, frequency caps, List-Unsubscribe, an
    erasure's suppression); `required` only whether people may unsubscribe. The change is
    written to the staff audit log with the key's name. Needs the `admin` scope."""
    topic, created = topics.put(db, key, body, actor=actor_for(request, principal))
    db.commit()
    response.status_code = 201 if created else 200
    return topic


@router.get(
    "/{key}",
    operation_id="topics.get",
    summary="Read a topic",
    response_model=TopicOut,
    responses=NO_TOPIC,
    dependencies=[Depends(authenticated)],
)
def get_topic(key: KeyPath, db: SessionDep) -> Any:
    """The topic with this key, its category, channels, frequencies and caps. Any key but a
    `metrics`-only one."""
    return topics.get(db, key)


@router.get(
    "",
    operation_id="topics.list",
    summary="List topics",
    response_model=Page[TopicOut],
    dependencies=[Depends(authenticated)],
)
def list_topics(
    db: SessionDep,
    limit: Limit = 100,
    cursor: CursorQuery = None,
    category: Annotated[
        TopicCategory | None,
        Query(description="Only topics of this category: transactional or marketing."),
    ] = None,
) -> Any:
    """Every topic, oldest first, a page at a time (`next_cursor`). Any key but a
    `metrics`-only one."""
    rows = topics.page(db, after_id=position(cursor), limit=limit + 1, category=category)
    return page_of(rows, limit, TopicOut.model_validate)
