"""/v1/topics: what people can subscribe to."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from hub.fields import TOPIC_KEY
from hub.schemas.base import Page
from hub.schemas.errors import ErrorOut
from hub.schemas.topics import TopicIn, TopicOut
from hub.services import topics
from hub.web.deps import AdminScope, SessionDep, authenticated
from hub.web.paging import CursorQuery, Limit, page_of, position

router = APIRouter(prefix="/v1/topics", tags=["topics"])

KeyPath = Annotated[
    str,
    Path(
        pattern=TOPIC_KEY,
        description="a-z, 0-9, '_', '.', '-'; up to 100 characters",
    ),
]


@router.put(
    "/{key}",
    response_model=TopicOut,
    responses={
        201: {"model": TopicOut, "description": "Created"},
        409: {"model": ErrorOut, "description": "Created concurrently by another request; retry"},
    },
)
def put_topic(
    key: KeyPath, body: TopicIn, response: Response, _: AdminScope, db: SessionDep
) -> Any:
    topic, created = topics.put(db, key, body)
    db.commit()
    response.status_code = 201 if created else 200
    return topic


@router.get("/{key}", response_model=TopicOut, dependencies=[Depends(authenticated)])
def get_topic(key: KeyPath, db: SessionDep) -> Any:
    return topics.get(db, key)


@router.get("", response_model=Page[TopicOut], dependencies=[Depends(authenticated)])
def list_topics(db: SessionDep, limit: Limit = 100, cursor: CursorQuery = None) -> Any:
    rows = topics.page(db, after_id=position(cursor), limit=limit + 1)
    return page_of(rows, limit, TopicOut.model_validate)
