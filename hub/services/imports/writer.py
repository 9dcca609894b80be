"""Write a batch of checked import rows: one lookup, bulk insert, bulk update, events, commit.

The same merge and the same events as a PATCH through the API, without an ORM object or a
query per row; owners and teams (`care`) too, with their events on the owners' timelines, and a
row whose owner or teams the API would refuse is refused whole. With the subscribe option,
the batch's people are subscribed in the same transaction (`subscribe`), so a batch's contacts
and their consent commit together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from json.encoder import encode_basestring_ascii
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.db.base import utcnow
from hub.db.models import Contact
from hub.domain import EventType
from hub.schemas.contacts import CONTACT_FIELDS, ContactIn
from hub.services.actor import Actor
from hub.services.contacts import changes, merged
from hub.services.errors import Conflict
from hub.services.imports.care import BatchCare, Known, announce
from hub.services.imports.inserts import DriverInserts
from hub.services.imports.rows import GoodRow, Problem
from hub.services.imports.subscribe import Subscriber

_TABLE = cast(Table, Contact.__table__)
_OWNER = _TABLE.alias("owner")
_STATE = (*CONTACT_FIELDS, "attributes")
# Each contact with its owner's external id: the one look-up of a batch.
_SELECT = select(
    _TABLE.c.id,
    _TABLE.c.owner_id,
    _OWNER.c.external_id,
    _TABLE.c.external_id,
    *(_TABLE.c[name] for name in _STATE),
).outerjoin(_OWNER, _OWNER.c.id == _TABLE.c.owner_id)
_UPDATE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("_id"))
    .values({name: bindparam(f"_{name}") for name in (*_STATE, "owner_id", "updated_at")})
)
_DEFAULTS = ContactIn().model_dump()
_NEW = {**_DEFAULTS, "attributes": {}}  # a new contact's fields before its row's
ANALYZE_AFTER = 5_000  # contacts created by one import


@dataclass(frozen=True, slots=True)
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    subscribed: int = 0
    refused: tuple[Problem, ...] = ()  # rows written whose subscription was refused
    rejected: tuple[Problem, ...] = ()  # rows not written: their owner or teams were refused


class BatchWriter:
    def __init__(
        self, sessions: sessionmaker[Session], actor: Actor, subscriber: Subscriber | None = None
    ) -> None:
        self._sessions = sessions
        self._actor = actor
        self._subscriber = subscriber
        self._created = 0
        self._inserts = DriverInserts()

    def write(self, rows: list[GoodRow]) -> Counts:
        """Commit the batch: a checkpoint that a later failure does not undo.

        A concurrent writer creating one of the same contacts between our lookup and our insert
        makes the insert fail; the batch is then rolled back and planned again, once.

        Raises:
            Conflict: the batch collided with concurrent writers twice.
        """
        if not rows:
            return Counts()
        for attempt in (1, 2):
            try:
                with self._sessions() as session:
                    counts = self._write(session, rows)
                    session.commit()
            except IntegrityError as exc:
                if attempt == 2:
                    raise Conflict(
                        f"rows from line {rows[0][0]} on collided twice with concurrent changes "
                        "to the same contacts; the rows before them were imported"
                    ) from exc
            else:
                self._created += counts.created
                if self._created >= ANALYZE_AFTER > self._created - counts.created:
                    self._analyze()
                return counts
        raise AssertionError("unreachable")

    def _analyze(self) -> None:
        """Give PostgreSQL statistics for a table this import has grown.

        Without them (autovacuum gets to a new table a minute or so later) the planner looks
        up each batch's external ids with a sequential scan, and once the statement is prepared,
        with a generic plan that compares every row with every id: seconds per batch at 100,000
        contacts. With them it uses the unique index. A role that does not own the table gets a
        warning, not an error.
        """
        with self._sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text(f"ANALYZE {_TABLE.name}"))
                session.commit()

    def _write(self, session: Session, rows: list[GoodRow]) -> Counts:
        now = utcnow()
        known, owner_ids = _look_up(session, rows)
        care = BatchCare(
            session,
            rows=[(external_id, given, asked) for _, external_id, given, asked in rows],
            known=known,
            owner_ids=owner_ids,
        )
        plan = _plan(rows, known, care)
        connection = session.connection()
        new = [
            (external_id, c.state, care.owner_id(c)) for external_id, c in known.items() if c.new
        ]
        if new:
            for external_id, contact_id in self._inserts.contacts(connection, new, now=now).items():
                known[external_id].id = contact_id
        dirty = [
            {
                "_id": c.id,
                "_updated_at": now,
                "_owner_id": care.owner_id(c),
                **{f"_{k}": v for k, v in c.state.items()},
            }
            for c in known.values()
            if c.dirty
        ]
        if dirty:
            session.execute(_UPDATE, dirty)
        told = care.write(session, at=now)
        events = [
            (cast(int, known[external_id].id), type_, delta)
            for external_id, type_, delta in plan.events
        ]
        events += [(owner, EventType.CLIENT_ASSIGNED, json.dumps(said)) for owner, said in told]
        if events:
            self._inserts.events(connection, events, actor=self._actor, now=now)
        announce(session, told, actor=self._actor, at=now)
        counts = Counts(plan.created, plan.updated, plan.unchanged, rejected=tuple(plan.rejected))
        if self._subscriber is None:
            return counts
        people = [(line, cast(int, known[external_id].id)) for line, external_id in plan.written]
        subscribed, refused = self._subscriber.subscribe(session, people)
        return replace(counts, subscribed=subscribed, refused=tuple(refused))


@dataclass(slots=True)
class _Plan:
    """A batch's rows taken in order: what to write, and the rows refused."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    events: list[tuple[str, EventType, str]] = field(default_factory=list)  # changes as JSON
    rejected: list[Problem] = field(default_factory=list)
    written: list[tuple[int, str]] = field(default_factory=list)  # (line, external_id)


def _look_up(session: Session, rows: list[GoodRow]) -> tuple[dict[str, Known], dict[str, int]]:
    """The stored contacts the rows name, as people or as owners (one query), and the ids of
    these people's owners by external id."""
    wanted = {external_id for _, external_id, _, _ in rows}
    wanted.update(asked["owner"] for _, _, _, asked in rows if asked.get("owner"))
    known: dict[str, Known] = {}
    owner_ids: dict[str, int] = {}
    for found in session.execute(_SELECT.where(_TABLE.c.external_id.in_(wanted))):
        contact_id, owner_id, owner, external_id, *values = found
        known[external_id] = Known(contact_id, dict(zip(_STATE, values, strict=True)), owner)
        if owner is not None:
            owner_ids[owner] = owner_id
    return known, owner_ids


def _plan(rows: list[GoodRow], known: dict[str, Known], care: BatchCare) -> _Plan:
    """Merge each row into `known` as a PATCH (or, for a new person, a PUT) would."""
    plan = _Plan()
    for line, external_id, given, asked in rows:
        contact = known.get(external_id)
        before = contact.state if contact is not None else _NEW
        after = merged(before, given)
        change = None
        # A new contact that names no owner or teams breaks no rule of theirs.
        if asked or (contact is not None and after["kind"] != before["kind"]):
            checked = care.check(external_id, contact, kind=after["kind"], asked=asked)
            if isinstance(checked, tuple):
                plan.rejected.append((line, *checked))
                continue
            change = checked
        plan.written.append((line, external_id))
        if contact is None:  # new, as `contacts.put` would create it
            contact = known[external_id] = Known(None, after, new=True)
            text = created_json(after)
            if change is not None:
                care.apply(external_id, contact, change)
                text = _joined(text, change.delta)
            plan.events.append((external_id, EventType.CONTACT_CREATED, text))
            plan.created += 1
            continue
        delta = changes(contact.state, after)
        if change is not None:
            delta |= change.delta
            care.apply(external_id, contact, change)
        if not delta:
            plan.unchanged += 1
            continue
        contact.state = after
        contact.dirty = not contact.new  # one created in this batch is inserted as is
        plan.events.append((external_id, EventType.CONTACT_UPDATED, json.dumps(delta)))
        plan.updated += 1
    return plan


def _joined(text: str, more: dict[str, Any]) -> str:
    """The JSON object `text` with `more`'s entries after its own."""
    if not more:
        return text
    tail = json.dumps(more)
    return tail if text == "{}" else f"{text[:-1]}, {tail[1:]}"


def created_json(after: dict[str, Any]) -> str:
    """`json.dumps(changes({}, after))`, the changes of a new contact, at a quarter of the cost.

    Every field that has a value goes from null to it, then each attribute in key order. Built
    from pieces because the general path (compare each field with a missing one, then encode
    ten small dictionaries) is a sixth of an import's writing time. tests/unit checks that
    both give the same text.
    """
    parts = [
        f'"{name}": {{"before": null, "after": {_json(value)}}}'
        for name, value in after.items()
        if value is not None and name != "attributes"
    ]
    attributes = after["attributes"]
    parts.extend(
        f"{encode_basestring_ascii('attributes.' + key)}: "
        f'{{"before": null, "after": {_json(attributes[key])}}}'
        for key in sorted(attributes)
    )
    return "{" + ", ".join(parts) + "}"


def _json(value: Any) -> str:
    # encode_basestring_ascii is what json.dumps applies to each string, without its set-up.
    return encode_basestring_ascii(value) if isinstance(value, str) else json.dumps(value)
