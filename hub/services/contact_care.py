"""Who looks after a contact: their owner (an employee) and teams, as a contact's change
asks for them (checked before anything is written), written with the owners' side of it on
their own timelines, and shown beside the contact's fields."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, cast, delete, func, select, update
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Contact, ContactEvent
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
        if wanted == normalize_external_id(external_id):
            raise InvalidField("owner", "a contact cannot be their own owner")
        owner = session.scalar(select(Contact).where(Contact.external_id == wanted))
        if owner is None:
            raise InvalidField("owner", f"no contact with external_id {wanted!r}")
        if owner.kind is not ContactKind.EMPLOYEE:
            raise InvalidField(
                "owner", f"{wanted!r} is a {owner.kind.value}; an owner must be an employee"
            )
    team_ids = None
    if "teams" in care:
        keys = list(care["teams"] or [])
        team_ids = teams.ids_of(session, keys) if keys else {}
        team_ids = {key: team_ids[key] for key in keys}
    return Care(owner=owner, owner_given="owner" in care, team_ids=team_ids)


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
    if kind is ContactKind.EMPLOYEE and owner_id is not None:
        if care.owner_given:
            raise InvalidField("owner", "only a client has an owner; put employees in teams")
        raise InvalidField(
            "kind", "this client has an owner: clear `owner` to make them an employee"
        )
    if kind is ContactKind.CLIENT and contact is not None and contact.id is not None:
        owned = session.scalar(
            select(func.count()).select_from(Contact).where(Contact.owner_id == contact.id)
        )
        if owned:
            raise InvalidField(
                "kind", f"this employee owns {owned} clients: give them another owner first"
            )


def changes_of(before: CareState, after: CareState) -> Changes:
    delta: Changes = {}
    if before.owner_id != after.owner_id:
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
    rows = []
    if before.owner_id is not None:
        lost: dict[str, Any] = {
            "client": contact.external_id,
            "owner": {"before": True, "after": False},
        }
        lost["now"] = after.owner
        rows.append((before.owner_id, lost))
    if after.owner_id is not None:
        gained = {"client": contact.external_id, "owner": {"before": False, "after": True}}
        rows.append((after.owner_id, gained))
    now = utcnow()
    timeline.record_many(
        session,
        [
            timeline.event_row(
                contact_id=owner_id,
                type=EventType.CLIENT_ASSIGNED,
                actor=actor,
                at=now,
                changes=said,
            )
            for owner_id, said in rows
        ],
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
