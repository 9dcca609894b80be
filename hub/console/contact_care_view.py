"""Who looks after a person, as the console's contact pages show it: the owner, teams and
clients on a profile, and the contact list's `owner` and `team` filters, found (the contact
form's own fields are `contact_form`'s)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.console.audience_forms import Problem
from hub.db.models import Contact, Team, TeamMember
from hub.domain import ContactKind
from hub.fields import normalize_external_id


@dataclass(frozen=True, slots=True)
class Facts:
    """Who looks after the person, for their profile: their owner (a client's), their teams as
    (key, name), and how many clients they own (an employee's)."""

    owner: Contact | None = None
    teams: list[tuple[str, str]] = field(default_factory=list)
    owns: int = 0


def facts(session: Session, contact: Contact) -> Facts:
    owner = session.get(Contact, contact.owner_id) if contact.owner_id is not None else None
    found = session.execute(
        select(Team.key, Team.name)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.contact_id == contact.id)
        .order_by(Team.name, Team.key)
    )
    teams = [(key, name) for key, name in found]
    owns = 0
    if contact.kind is ContactKind.EMPLOYEE:
        owns = (
            session.scalar(
                select(func.count()).select_from(Contact).where(Contact.owner_id == contact.id)
            )
            or 0
        )
    return Facts(owner=owner, teams=teams, owns=owns)


@dataclass(frozen=True, slots=True)
class Narrowed:
    """The contact list's `owner` and `team` filters, found: the owner's row id and the
    team's, a heading that says what the list shows, and a problem for each that is unknown."""

    owner_id: int | None = None
    team_id: int | None = None
    heading: str = ""
    problems: list[Problem] = field(default_factory=list)


def narrowed(session: Session, *, owner: str, team: str) -> Narrowed:
    said: list[str] = []
    problems: list[Problem] = []
    owner_id = team_id = None
    if owner:
        wanted = normalize_external_id(owner)
        found = session.scalar(select(Contact).where(Contact.external_id == wanted))
        if found is None:
            problems.append(Problem("owner", f"Owner: no one has the external id {wanted!r}"))
        else:
            owner_id = found.id
            said.append(f"Clients of {_named(found)}")
    if team:
        row = session.execute(select(Team.id, Team.name).where(Team.key == team)).first()
        if row is None:
            problems.append(Problem("team", f"Team: there is no team with the key {team!r}"))
        else:
            team_id = row.id
            said.append(f"{'members' if said else 'Members'} of the team {row.name}")
    return Narrowed(
        owner_id, team_id, " who are ".join(said) if len(said) > 1 else "".join(said), problems
    )


def _named(contact: Contact) -> str:
    return f"{contact.name} ({contact.external_id})" if contact.name else contact.external_id
