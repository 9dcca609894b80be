"""/v1/segments: saved, named condition trees over contacts, and how many people they match."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy.orm import Session

from hub.api import errors
from hub.db.models import Topic
from hub.dispatch import audience
from hub.fields import TOPIC_KEY
from hub.schemas.base import Page
from hub.schemas.segments import (
    Condition,
    SampleContact,
    SavedSegmentIn,
    SavedSegmentOut,
    SegmentCountIn,
    SegmentCountOut,
)
from hub.services import segments, topics
from hub.services.errors import InvalidField, NotFound
from hub.web.deps import CampaignsScope, SessionDep, actor_for
from hub.web.paging import CursorQuery, Limit, page_of, position

router = APIRouter(prefix="/v1/segments", tags=["segments"])
SAMPLE = 10

KeyPath = Annotated[
    str,
    Path(
        pattern=TOPIC_KEY,
        description="The segment's key: a-z, 0-9, '_', '.', '-'; up to 100 characters",
    ),
]
NO_SEGMENT = errors.not_found("No segment has this key")
TopicQuery = Annotated[
    str | None,
    Query(pattern=TOPIC_KEY, description="Count within this topic's audience only."),
]


@router.get(
    "",
    response_model=Page[SavedSegmentOut],
    operation_id="segments.list",
    summary="List saved segments",
)
def list_segments(
    _: CampaignsScope, db: SessionDep, limit: Limit = 100, cursor: CursorQuery = None
) -> Any:
    """Every saved segment, oldest first, a page at a time (`next_cursor`). Needs the
    `campaigns` scope."""
    rows = segments.page(db, after_id=position(cursor), limit=limit + 1)
    return page_of(rows, limit, SavedSegmentOut.model_validate)


@router.post(
    "/count",
    response_model=SegmentCountOut,
    operation_id="segments.count",
    summary="Count the contacts a tree matches",
    responses=errors.TOO_LARGE,
)
def count_segment(body: SegmentCountIn, _: CampaignsScope, db: SessionDep) -> Any:
    """How many contacts match the conditions now (within a topic's audience when one is
    given), and up to 10 of them, the newest first. Saves nothing. Needs the `campaigns`
    scope."""
    if body.conditions is not None:
        segments.check_topics(db, body.conditions, field="conditions")
    topic = _topic(db, body.topic, field="topic")
    return _counted(db, topic, body.conditions)


@router.put(
    "/{key}",
    response_model=SavedSegmentOut,
    operation_id="segments.upsert",
    summary="Create or replace a saved segment",
    responses={
        200: {"description": "Replaced"},
        201: {"model": SavedSegmentOut, "description": "Created"},
        **errors.conflict("Created concurrently by another request; retry"),
        **errors.TOO_LARGE,
    },
)
def put_segment(
    key: KeyPath,
    body: SavedSegmentIn,
    request: Request,
    response: Response,
    principal: CampaignsScope,
    db: SessionDep,
) -> Any:
    """Save the conditions under this key (campaigns name it as `segment_key`). Groups nest
    at most 5 deep, with at most 50 conditions; every topic named must exist. Recorded on
    the audit log. Needs the `campaigns` scope."""
    segment, created = segments.put(db, key, body, actor_for(request, principal))
    db.commit()
    response.status_code = 201 if created else 200
    return segment


@router.get(
    "/{key}",
    response_model=SavedSegmentOut,
    operation_id="segments.get",
    summary="Read a saved segment",
    responses=NO_SEGMENT,
)
def get_segment(key: KeyPath, _: CampaignsScope, db: SessionDep) -> Any:
    """The segment's name, description and conditions. Needs the `campaigns` scope."""
    return segments.get(db, key)


@router.delete(
    "/{key}",
    status_code=204,
    operation_id="segments.delete",
    summary="Delete a saved segment",
    responses={204: {"description": "Deleted"}, **NO_SEGMENT},
)
def delete_segment(
    key: KeyPath, request: Request, principal: CampaignsScope, db: SessionDep
) -> Response:
    """Campaigns created from it keep their own copy of its conditions. Recorded on the
    audit log. Needs the `campaigns` scope."""
    segments.delete(db, key, actor_for(request, principal))
    db.commit()
    return Response(status_code=204)


@router.get(
    "/{key}/sample",
    response_model=SegmentCountOut,
    operation_id="segments.sample",
    summary="Count a saved segment and show some of its people",
    responses=NO_SEGMENT,
)
def sample_segment(
    key: KeyPath, _: CampaignsScope, db: SessionDep, topic: TopicQuery = None
) -> Any:
    """How many contacts the saved segment matches now (within a topic's audience when one
    is given), and up to 10 of them, the newest first. Needs the `campaigns` scope."""
    segment = segments.get(db, key)
    return _counted(
        db, _topic(db, topic, field="topic"), Condition.model_validate(segment.conditions)
    )


def _topic(db: Session, key: str | None, *, field: str) -> Topic | None:
    if key is None:
        return None
    try:
        return topics.get(db, key)
    except NotFound:
        raise InvalidField(field, f"no topic {key!r}") from None


def _counted(db: Session, topic: Topic | None, tree: Condition | None) -> SegmentCountOut:
    stored = tree.dump() if tree is not None else None
    return SegmentCountOut(
        count=audience.count(db, topic, stored),
        sample=[
            SampleContact(external_id=external_id, name=name)
            for external_id, name in audience.sample(db, topic, stored, limit=SAMPLE)
        ],
    )
