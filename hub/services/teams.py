"""Teams: create or rename by key, list with member counts, delete (each change in the staff
audit log); and who belongs to which team, as a contact's `teams` field reads and sets it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Team, TeamMember
from hub.domain import EventType
from hub.services import audit, timeline
from hub.services.actor import Actor
from hub.services.errors import Conflict, InvalidField, NotFound


@dataclass(frozen=True, slots=True)
class TeamView:
    """A team as the API shows it: its row and how many contacts belong to it."""

    id: int
    key: str
    name: str
    members: int
    created_at: dt.datetime


def get(session: Session, key: str) -> Team:
    team = session.scalar(select(Team).where(Team.key == key))
    if team is None:
        raise NotFound(f"no team with key {key!r}")
    return team


def view(session: Session, key: str) -> TeamView:
    team = get(session, key)
    count = session.scalar(
        select(func.count()).select_from(TeamMember).where(TeamMember.team_id == team.id)
    )
    return TeamView(team.id, team.key, team.name, count or 0, team.created_at)


def put(session: Session, key: str, name: str, *, actor: Actor) -> tuple[TeamView, bool]:
    """Create the team, or rename the one with this key; returns it and whether it is new."""
    team = session.scalar(select(Team).where(Team.key == key))
    if team is None:
        team = Team(key=key, name=name, created_at=utcnow())
        try:
            with session.begin_nested():
                session.add(team)
        except IntegrityError:
            raise Conflict(f"team {key!r} was created concurrently; retry") from None
        _audit(session, actor, audit.Action.CREATED, key, after={"name": name})
        return view(session, key), True
    if team.name != name:
        _audit(
            session,
            actor,
            audit.Action.UPDATED,
            key,
            before={"name": team.name},
            after={"name": name},
        )
        team.name = name
    return view(session, key), False


def page(session: Session, *, after_id: int | None, limit: int) -> list[TeamView]:
    """Oldest first, each with its member count (one grouped query for the page)."""
    query = select(Team).order_by(Team.id).limit(limit)
    if after_id is not None:
        query = query.where(Team.id > after_id)
    teams = list(session.scalars(query))
    counted = session.execute(
        select(TeamMember.team_id, func.count())
        .where(TeamMember.team_id.in_([t.id for t in teams]))
        .group_by(TeamMember.team_id)
    )
    counts = dict(counted.all())
    return [TeamView(t.id, t.key, t.name, counts.get(t.id, 0), t.created_at) for t in teams]


def remove(session: Session, key: str, *, actor: Actor) -> None:
    """Delete the team; its members leave it, each with a `contact.updated` on their timeline."""
    team = get(session, key)
    members = list(
        session.scalars(select(TeamMember.contact_id).where(TeamMember.team_id == team.id))
    )
    before = keys_of(session, members)
    session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
    session.execute(delete(Team).where(Team.id == team.id))
    now = utcnow()
    timeline.record_many(
        session,
        [
            timeline.event_row(
                contact_id=member,
                type=EventType.CONTACT_UPDATED,
                actor=actor,
                at=now,
                changes={"teams": {"before": keys, "after": [k for k in keys if k != key]}},
                reason="team_deleted",
            )
            for member, keys in before.items()
        ],
    )
    _audit(session, actor, audit.Action.DELETED, key, before={"name": team.name})


def keys_of(session: Session, contact_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each contact's team keys, sorted; a contact in no team is absent."""
    ids = list(contact_ids)
    found: dict[int, list[str]] = {}
    if not ids:
        return found
    rows = session.execute(
        select(TeamMember.contact_id, Team.key)
        .join(Team, Team.id == TeamMember.team_id)
        .where(TeamMember.contact_id.in_(ids))
        .order_by(TeamMember.contact_id, Team.key)
    )
    for contact_id, key in rows:
        found.setdefault(contact_id, []).append(key)
    return found


def ids_of(session: Session, keys: Sequence[str], *, field: str = "teams") -> dict[str, int]:
    """The teams' ids by key; an unknown key is a 422 naming `teams[i]`."""
    found = session.execute(select(Team.key, Team.id).where(Team.key.in_(keys)))
    known = dict(found.all())
    for index, key in enumerate(keys):
        if key not in known:
            raise InvalidField(f"{field}[{index}]", f"no team with key {key!r}; create it first")
    return known


def replace(session: Session, contact_id: int, team_ids: Iterable[int]) -> None:
    """The contact belongs to exactly these teams from now on."""
    wanted = set(team_ids)
    have = set(
        session.scalars(select(TeamMember.team_id).where(TeamMember.contact_id == contact_id))
    )
    if gone := have - wanted:
        session.execute(
            delete(TeamMember).where(
                TeamMember.contact_id == contact_id, TeamMember.team_id.in_(gone)
            )
        )
    if new := wanted - have:
        now = utcnow()
        session.execute(
            insert(TeamMember),
            [{"team_id": t, "contact_id": contact_id, "added_at": now} for t in sorted(new)],
        )


def leave_all(session: Session, contact_id: int) -> None:
    session.execute(delete(TeamMember).where(TeamMember.contact_id == contact_id))


def _audit(
    session: Session,
    actor: Actor,
    action: audit.Action,
    key: str,
    *,
    before: dict[str, str] | None = None,
    after: dict[str, str] | None = None,
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        resource=audit.Resource.TEAM,
        key=key,
        before=before,
        after=after,
    )
