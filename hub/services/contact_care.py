"""Who looks after a contact: their owner (an employee) and teams, as a contact's change
asks for them (checked before anything is written), written with the owners' side of it on
their own timelines, and shown beside the contact's fields."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import String, bindparam, cast, delete, func, insert, select, update
from sqlalchemy.orm import Session

from hub.db.base import Base, utcnow
from hub.db.models import Contact, ContactEvent, Team, TeamMember
from hub.domain import ContactKind, EventType
from hub.fields import normalize_external_id
from hub.schemas.contacts import ContactOut
from hub.services import teams, timeline
from hub.services.actor import Actor
from hub.services.errors import InvalidField
from hub.services.timeline import Changes


@dataclass(frozen=True)
class Care:
    """Who looks after the person, as a change asks for it: each part None when not given.
    Resolved before anything is written, so a bad owner or team is a 422 that changes nothing."""

    owner: Contact | None = None
    owner_given: bool = False
    team_ids: dict[str, int] | None = None  # key -> id, in the order given
    owned_by_self: bool = False

    @property
    def given(self) -> bool:
        return self.owner_given or self.team_ids is not None


NOTHING = Care()  # a change that names neither owner nor teams


@dataclass
class CareState:
    owner_id: int | None
    owner: str | None
    teams: list[str] = field(default_factory=list)


def resolve(session: Session, external_id: str, care: Mapping[str, Any]) -> Care:
    """Look up the owner (an employee, not the person) and the teams a change names."""
    owner: Contact | None = None
    if "owner" in care and care["owner"] is not None:
        wanted = normalize_external_id(care["owner"])
        owner = session.scalar(select(Contact).where(Contact.external_id == wanted))
        problem = owner_problem(
            client=normalize_external_id(external_id),
            owner=wanted,
            owner_kind=owner.kind if owner is not None else None,
        )
        if problem is not None:
            raise InvalidField("owner", problem)
    team_ids = None
    if "teams" in care:
        keys = list(care["teams"] or [])
        team_ids = teams.ids_of(session, keys) if keys else {}
        team_ids = {key: team_ids[key] for key in keys}
    return Care(owner=owner, owner_given="owner" in care, team_ids=team_ids)


def owner_problem(*, client: str, owner: str, owner_kind: ContactKind | None) -> str | None:
    """Why `owner` (an external id; `owner_kind` None when nobody has it) cannot look after
    `client`, or None when they can: the rule of `resolve`, which the import applies row by row."""
    if owner == client:
        return "a contact cannot be their own owner"
    if owner_kind is None:
        return f"no contact with external_id {owner!r}"
    if owner_kind is not ContactKind.EMPLOYEE:
        return f"{owner!r} is a {owner_kind.value}; an owner must be an employee"
    return None


def state_of(session: Session, contact: Contact | None) -> CareState:
    if contact is None or contact.id is None:
        return CareState(None, None)
    owner = None
    if contact.owner_id is not None:
        owner = session.scalar(select(Contact.external_id).where(Contact.id == contact.owner_id))
    keys = teams.keys_of(session, [contact.id]).get(contact.id, [])
    return CareState(contact.owner_id, owner, keys)


def after_change(before: CareState, care: Care) -> CareState:
    after = CareState(before.owner_id, before.owner, list(before.teams))
    if care.owner_given:
        after.owner_id = care.owner.id if care.owner else None
        after.owner = care.owner.external_id if care.owner else None
    if care.team_ids is not None:
        after.teams = sorted(care.team_ids)
    return after


def check_kind(
    session: Session, contact: Contact | None, kind: ContactKind, owner_id: int | None, care: Care
) -> None:
    """Only clients have owners, and only employees own: an employee's place is in teams, and
    "my clients" and the per-manager counts read the owner as the person's account manager."""
    owned = 0
    if kind is ContactKind.CLIENT and contact is not None and contact.id is not None:
        owned = (
            session.scalar(
                select(func.count()).select_from(Contact).where(Contact.owner_id == contact.id)
            )
            or 0
        )
    problem = kind_problem(
        kind=kind, has_owner=owner_id is not None, owner_given=care.owner_given, owned=owned
    )
    if problem is not None:
        raise InvalidField(*problem)


def kind_problem(
    *, kind: ContactKind, has_owner: bool, owner_given: bool, owned: int
) -> tuple[str, str] | None:
    """(field, reason) when a person of `kind` cannot have an owner (`has_owner`, named in the
    change when `owner_given`) or own `owned` clients; None when all is well."""
    if kind is ContactKind.EMPLOYEE and has_owner:
        if owner_given:
            return "owner", "only a client has an owner; put employees in teams"
        return "kind", "this client has an owner: clear the owner to make them an employee"
    if kind is ContactKind.CLIENT and owned:
        clients = "a client" if owned == 1 else f"{owned} clients"
        return "kind", f"this employee owns {clients}: give them another owner first"
    return None


def changes_of(before: CareState, after: CareState) -> Changes:
    delta: Changes = {}
    if before.owner != after.owner:  # external ids name owners one to one, as ids do
        delta["owner"] = {"before": before.owner, "after": after.owner}
    if before.teams != after.teams:
        delta["teams"] = {"before": before.teams, "after": after.teams}
    return delta


def write(
    session: Session,
    contact: Contact,
    *,
    before: CareState,
    after: CareState,
    care: Care,
    actor: Actor,
) -> None:
    """Memberships, and the owners' side of a change of owner on their own timelines."""
    if care.team_ids is not None and before.teams != after.teams:
        teams.replace(session, contact.id, care.team_ids.values())
    if before.owner_id == after.owner_id:
        return
    said = assignments(
        client=contact.external_id, before=before.owner_id, after=after.owner_id, now=after.owner
    )
    record_assignments(session, said, actor=actor, at=utcnow())


Owner = TypeVar("Owner", int, str)


def assignments(
    *, client: str, before: Owner | None, after: Owner | None, now: str | None
) -> list[tuple[Owner, dict[str, Any]]]:
    """What the owners' timelines say when `client`'s owner goes from `before` to `after`
    (by id, or by external id for an import that has yet to insert them): the former owner is
    told who took over (`now`, the new owner's external id), the new one that they did."""
    said: list[tuple[Owner, dict[str, Any]]] = []
    if before == after:
        return said
    if before is not None:
        lost = {"client": client, "owner": {"before": True, "after": False}, "now": now}
        said.append((before, lost))
    if after is not None:
        said.append((after, {"client": client, "owner": {"before": False, "after": True}}))
    return said


def record_assignments(
    session: Session,
    told: Sequence[tuple[int, Mapping[str, Any]]],
    *,
    actor: Actor,
    at: dt.datetime,
) -> None:
    """client.assigned on each owner's timeline (owner id, changes), in one statement, and
    to the event endpoints that listen to it."""
    timeline.record_many(session, assignment_rows(told, actor=actor, at=at))


def assignment_rows(
    told: Sequence[tuple[int, Mapping[str, Any]]], *, actor: Actor, at: dt.datetime
) -> list[dict[str, Any]]:
    """The client.assigned events of `record_assignments`, as `timeline.event_row`s."""
    return [
        timeline.event_row(
            contact_id=owner_id,
            type=EventType.CLIENT_ASSIGNED,
            actor=actor,
            at=at,
            changes=changes,
        )
        for owner_id, changes in told
    ]


def team_ids(session: Session, keys: Collection[str]) -> dict[str, int]:
    """The ids of those of `keys` that are teams, by key (one query; unknown keys absent)."""
    if not keys:
        return {}
    found = session.execute(select(Team.key, Team.id).where(Team.key.in_(list(keys))))
    return dict(found.all())


def memberships(session: Session, contact_ids: Collection[int]) -> dict[int, dict[str, int]]:
    """Each contact's teams as {key: team id} (one query); a contact in no team is absent."""
    found: dict[int, dict[str, int]] = {}
    if not contact_ids:
        return found
    rows = session.execute(
        select(TeamMember.contact_id, Team.key, Team.id)
        .join(Team, Team.id == TeamMember.team_id)
        .where(TeamMember.contact_id.in_(list(contact_ids)))
    )
    for contact_id, key, team_id in rows:
        found.setdefault(contact_id, {})[key] = team_id
    return found


def replace_memberships(
    session: Session,
    changed: Sequence[tuple[int, Collection[int], Collection[int]]],
    *,
    at: dt.datetime,
) -> None:
    """Many contacts' teams at once, as `teams.replace` does for one: each (contact id, team
    ids they were in, team ids they are in now), in one DELETE and one INSERT for them all, so
    the memberships kept keep their dates."""
    gone = [
        {"c": contact_id, "t": team_id}
        for contact_id, had, has in changed
        for team_id in set(had) - set(has)
    ]
    new = [
        {"team_id": team_id, "contact_id": contact_id, "added_at": at}
        for contact_id, had, has in changed
        for team_id in sorted(set(has) - set(had))
    ]
    if gone:
        session.execute(_LEAVE, gone)
    if new:
        session.execute(insert(_MEMBERS), new)


# Core, not the ORM: a DELETE run with many parameter sets is the driver's executemany.
_MEMBERS = Base.metadata.tables[TeamMember.__tablename__]
_LEAVE = delete(_MEMBERS).where(
    _MEMBERS.c.contact_id == bindparam("c"), _MEMBERS.c.team_id == bindparam("t")
)


def shown(session: Session, rows: Sequence[Contact]) -> list[ContactOut]:
    """The contacts as the API shows them, with their owners and teams (two queries a page)."""
    owner_ids = {c.owner_id for c in rows if c.owner_id is not None}
    owners: dict[int, str] = {}
    if owner_ids:
        found = session.execute(
            select(Contact.id, Contact.external_id).where(Contact.id.in_(owner_ids))
        )
        owners = dict(found.all())
    keys = teams.keys_of(session, [c.id for c in rows])
    return [
        ContactOut.model_validate(
            {
                **{name: getattr(c, name) for name in _SHOWN},
                "owner": owners.get(c.owner_id) if c.owner_id is not None else None,
                "teams": keys.get(c.id, []),
            }
        )
        for c in rows
    ]


_SHOWN = tuple(name for name in ContactOut.model_fields if name not in {"owner", "teams"})


ERASED_OWNER = "(erased)"  # what a client's timeline says their erased owner was


def erased(session: Session, contact: Contact, actor: Actor, *, at: dt.datetime) -> None:
    """Before a contact is erased: their clients lose their owner (said on each client's
    timeline without the erased person's id), their owner hears they are gone, the owners'
    events that named them go with them, and they leave their teams."""
    clients = list(session.scalars(select(Contact.id).where(Contact.owner_id == contact.id)))
    rows = [
        timeline.event_row(
            contact_id=client,
            type=EventType.CONTACT_UPDATED,
            actor=actor,
            at=at,
            changes={"owner": {"before": ERASED_OWNER, "after": None}},
            reason="owner_erased",
        )
        for client in clients
    ]
    if clients:
        session.execute(
            update(Contact).where(Contact.id.in_(clients)).values(owner_id=None, updated_at=at)
        )
    if contact.owner_id is not None:
        rows.append(
            timeline.event_row(
                contact_id=contact.owner_id,
                type=EventType.CLIENT_ASSIGNED,
                actor=actor,
                at=at,
                changes={"client": None, "owner": {"before": True, "after": False}},
                reason="client_erased",
            )
        )
    # The client's id on their former owners' timelines is the client's data, erased with it.
    session.execute(
        delete(ContactEvent).where(
            ContactEvent.type == EventType.CLIENT_ASSIGNED,
            cast(ContactEvent.changes["client"].as_string(), String) == contact.external_id,
        )
    )
    timeline.record_many(session, rows)
    teams.leave_all(session, contact.id)
