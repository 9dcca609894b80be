"""/v1/teams: the groups employees and clients belong to."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request, Response

from hub.api import errors
from hub.schemas.base import Page
from hub.schemas.teams import TEAM_EXAMPLE, TEAM_KEY, TEAM_OUT_EXAMPLE, TeamIn, TeamOut
from hub.services import teams
from hub.web.deps import ContactsScope, SessionDep, actor_for, authenticated
from hub.web.paging import CursorQuery, Limit, page_of, position

router = APIRouter(prefix="/v1/teams", tags=["teams"])

KeyPath = Annotated[
    str,
    Path(
        pattern=TEAM_KEY,
        description="The team's key: a-z, 0-9, '_', '.', '-'; up to 64 characters",
    ),
]
NO_TEAM = errors.not_found("No team has this key")
TeamBody = Annotated[
    TeamIn,
    Body(openapi_examples={"team": {"summary": "A sales team", "value": TEAM_EXAMPLE}}),
]


@router.put(
    "/{key}",
    operation_id="teams.put",
    summary="Create or rename a team",
    response_model=TeamOut,
    responses={
        200: {
            "description": "Renamed (or unchanged)",
            "content": {"application/json": {"example": TEAM_OUT_EXAMPLE}},
        },
        201: {
            "model": TeamOut,
            "description": "Created",
            "content": {"application/json": {"example": TEAM_OUT_EXAMPLE}},
        },
        **errors.conflict("Created concurrently by another request; retry"),
        **errors.TOO_LARGE,
    },
)
def put_team(
    key: KeyPath,
    body: TeamBody,
    request: Request,
    response: Response,
    principal: ContactsScope,
    db: SessionDep,
) -> Any:
    """201 when the team is new, 200 when it was renamed or already had this name. Contacts
    join it through their `teams` field. The change is written to the staff audit log with
    the key's name. Needs the `contacts` scope."""
    team, created = teams.put(db, key, body.name, actor=actor_for(request, principal))
    db.commit()
    response.status_code = 201 if created else 200
    return team


@router.get(
    "/{key}",
    operation_id="teams.get",
    summary="Read a team",
    response_model=TeamOut,
    responses=NO_TEAM,
    dependencies=[Depends(authenticated)],
)
def get_team(key: KeyPath, db: SessionDep) -> Any:
    """The team's name and how many contacts belong to it; `GET /v1/contacts?team=` lists
    them. Any key but a `metrics`-only one."""
    return teams.view(db, key)


@router.get(
    "",
    operation_id="teams.list",
    summary="List teams",
    response_model=Page[TeamOut],
    dependencies=[Depends(authenticated)],
)
def list_teams(db: SessionDep, limit: Limit = 100, cursor: CursorQuery = None) -> Any:
    """Every team with its member count, oldest first, a page at a time (`next_cursor`).
    Any key but a `metrics`-only one."""
    rows = teams.page(db, after_id=position(cursor), limit=limit + 1)
    return page_of(rows, limit, TeamOut.model_validate)


@router.delete(
    "/{key}",
    operation_id="teams.delete",
    summary="Delete a team",
    status_code=204,
    responses=NO_TEAM,
)
def delete_team(key: KeyPath, request: Request, principal: ContactsScope, db: SessionDep) -> None:
    """Its members leave it (each with a `contact.updated` on their timeline); the contacts
    themselves stay. Written to the staff audit log. Needs the `contacts` scope."""
    teams.remove(db, key, actor=actor_for(request, principal))
    db.commit()
