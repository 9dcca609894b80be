"""An import batch's owners and teams: looked up with one query each for the whole batch,
checked row by row with the API's rules (`contact_care`), and written in bulk with what a
PATCH writes on the owners' timelines (`client.assigned`) and in the team memberships.

Rows are taken in file order, as if each were a PATCH: a row may name as owner an employee
created by an earlier row of the same file, and an employee who was given clients by an earlier
row cannot then be made a client.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from hub.db.base import Base
from hub.db.models import Contact
from hub.domain import ContactKind
from hub.events import outbox
from hub.services import contact_care
from hub.services.actor import Actor
from hub.services.contact_care import CareState
from hub.services.timeline import Changes

_CONTACTS = Base.metadata.tables[Contact.__tablename__]
_SET_OWNER = (
    update(_CONTACTS)
    .where(_CONTACTS.c.id == bindparam("_id"))
    .values(owner_id=bindparam("_owner_id"))
)


@dataclass(slots=True)
class Known:
    """A contact as the batch knows it: as stored, then as the batch's rows leave it."""

    id: int | None  # None until inserted
    state: dict[str, Any]  # the contact's fields
    owner: str | None = None  # the owner's external id
    dirty: bool = False  # stored, and changed by the batch
    new: bool = False  # created by the batch


@dataclass(frozen=True, slots=True)
class Change:
    """What a row does to who looks after the person, once checked."""

    owner: str | None
    teams: list[str] | None  # sorted keys; None: the row does not set them
    delta: Changes  # for the person's own event, after the fields' changes


class BatchCare:
    """The owners and teams of one batch: what the rows name, looked up at once."""

    def __init__(
        self,
        session: Session,
        *,
        rows: Iterable[tuple[str, Mapping[str, Any], Mapping[str, Any]]],
        known: Mapping[str, Known],
        owner_ids: Mapping[str, int],
    ) -> None:
        """`rows`: (external id, fields given, owner and teams given) in file order; `known`:
        the stored contacts the rows name, as people or as owners; `owner_ids`: the stored
        owners of those people by external id."""
        self._known = known
        self._owner_ids = dict(owner_ids)
        keys: set[str] = set()
        setting_teams: set[int] = set()
        turning: set[int] = set()  # employees a row may make clients
        for external_id, given, asked in rows:
            contact = known.get(external_id)
            keys.update(asked.get("teams") or ())
            if contact is not None and contact.id is not None:
                if "teams" in asked:
                    setting_teams.add(contact.id)
                if "kind" in given and contact.state["kind"] is ContactKind.EMPLOYEE:
                    turning.add(contact.id)
        self._team_ids = contact_care.team_ids(session, keys)
        self._stored = contact_care.memberships(session, setting_teams)
        self._teams: dict[str, list[str]] = {}  # as the batch leaves them
        self._owned = self._owned_counts(session, turning)
        self._told: list[tuple[str, Changes]] = []  # (owner, changes) for their timelines

    def _owned_counts(self, session: Session, employees: Collection[int]) -> dict[str, int]:
        if not employees:
            return {}
        counted = session.execute(
            select(Contact.owner_id, func.count())
            .where(Contact.owner_id.in_(list(employees)))
            .group_by(Contact.owner_id)
        )
        by_id = {c.id: external_id for external_id, c in self._known.items()}
        return {by_id[owner_id]: count for owner_id, count in counted}

    def check(
        self,
        external_id: str,
        contact: Known | None,
        *,
        kind: ContactKind,
        asked: Mapping[str, Any],
    ) -> Change | tuple[str, str]:
        """The row's change, or (field, reason) when it is refused, by the API's rules."""
        before = contact.owner if contact is not None else None
        owner = before
        if "owner" in asked:
            owner = asked["owner"]
            if owner is not None:
                holder = self._known.get(owner)
                problem = contact_care.owner_problem(
                    client=external_id,
                    owner=owner,
                    owner_kind=holder.state["kind"] if holder is not None else None,
                )
                if problem is not None:
                    return "owner", problem
        teams = None
        if "teams" in asked:
            unknown = [key for key in asked["teams"] if key not in self._team_ids]
            if unknown:
                return "teams", f"no team with key {unknown[0]!r}; create it first"
            teams = sorted(asked["teams"])
        owned = self._owned.get(external_id, 0) if contact is not None else 0
        wrong = contact_care.kind_problem(
            kind=kind, has_owner=owner is not None, owner_given="owner" in asked, owned=owned
        )
        if wrong is not None:
            return wrong
        had = self._teams_of(external_id, contact) if teams is not None else []
        delta = contact_care.changes_of(
            CareState(None, before, had), CareState(None, owner, had if teams is None else teams)
        )
        return Change(owner, teams, delta)

    def apply(self, external_id: str, contact: Known, change: Change) -> None:
        """The checked change is made: later rows of the batch see it."""
        if change.teams is not None:
            self._teams[external_id] = change.teams
        if change.owner == contact.owner:
            return
        said = contact_care.assignments(
            client=external_id, before=contact.owner, after=change.owner, now=change.owner
        )
        self._told.extend(said)
        if contact.owner is not None:
            self._owned[contact.owner] = self._owned.get(contact.owner, 0) - 1
        if change.owner is not None:
            self._owned[change.owner] = self._owned.get(change.owner, 0) + 1
        contact.owner = change.owner

    def owner_id(self, contact: Known) -> int | None:
        """The id of the contact's owner: None when they have none, and also, before the
        batch's contacts are inserted, when the owner is new too (`write` sets it then)."""
        return self._id_of(contact.owner) if contact.owner is not None else None

    def write(self, session: Session, *, at: dt.datetime) -> list[tuple[int, Changes]]:
        """After the batch's contacts are inserted: the owners of new contacts that were new
        themselves, and memberships. Returns the owners' side, (owner id, changes) for a
        client.assigned on their timelines, to append with the batch's other events."""
        # New contacts whose owner is new too: inserted together, while the owner had no id.
        late = [
            {"_id": c.id, "_owner_id": self._known[c.owner].id}
            for c in self._known.values()
            if c.new and c.owner is not None and self._known[c.owner].new
        ]
        if late:
            session.execute(_SET_OWNER, late)
        moved = []
        for external_id, keys in self._teams.items():
            contact = self._known[external_id]
            assert contact.id is not None
            had = self._stored.get(contact.id, {})
            if sorted(had) != keys:
                moved.append((contact.id, had.values(), [self._team_ids[k] for k in keys]))
        contact_care.replace_memberships(session, moved, at=at)
        return [(self._inserted(owner), changes) for owner, changes in self._told]

    def _teams_of(self, external_id: str, contact: Known | None) -> list[str]:
        if external_id in self._teams:
            return self._teams[external_id]
        if contact is None or contact.id is None:
            return []
        return sorted(self._stored.get(contact.id, {}))

    def _inserted(self, owner: str) -> int:
        found = self._id_of(owner)
        assert found is not None, "called after the batch's contacts are inserted"
        return found

    def _id_of(self, owner: str) -> int | None:
        holder = self._known.get(owner)
        return holder.id if holder is not None else self._owner_ids[owner]


def announce(
    session: Session, told: list[tuple[int, Changes]], *, actor: Actor, at: dt.datetime
) -> None:
    """The owners' client.assigned events to the event endpoints that listen to them, as the
    API's changes are (the import appends the events themselves with its own)."""
    if told and outbox.DIRECTORY.get(session):  # the rows are built only for them
        outbox.emit(session, contact_care.assignment_rows(told, actor=actor, at=at))
