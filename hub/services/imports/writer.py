"""Write a batch of checked import rows: one lookup, bulk insert, bulk update, events, commit.

The same merge and the same events as a PATCH through the API, without an ORM object or a
query per row. With the subscribe option, the batch's people are subscribed in the same
transaction (`subscribe`), so a batch's contacts and their consent commit together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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
from hub.services.imports.inserts import DriverInserts
from hub.services.imports.rows import GoodRow, Problem
from hub.services.imports.subscribe import Subscriber

_TABLE = cast(Table, Contact.__table__)
_STATE = (*CONTACT_FIELDS, "attributes")
_SELECT = select(_TABLE.c.id, _TABLE.c.external_id, *(_TABLE.c[name] for name in _STATE))
_UPDATE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("_id"))
    .values({name: bindparam(f"_{name}") for name in (*_STATE, "updated_at")})
)
_DEFAULTS = ContactIn().model_dump()
ANALYZE_AFTER = 5_000  # contacts created by one import


@dataclass(frozen=True, slots=True)
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    subscribed: int = 0
    refused: tuple[Problem, ...] = ()  # rows written whose subscription was refused


@dataclass(slots=True)
class _Contact:
    id: int | None  # None until inserted
    state: dict[str, Any]
    dirty: bool = False


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
        wanted = {external_id for _, external_id, _ in rows}
        known = {
            found.external_id: _Contact(found.id, dict(zip(_STATE, found[2:], strict=True)))
            for found in session.execute(_SELECT.where(_TABLE.c.external_id.in_(wanted)))
        }
        created = updated = unchanged = 0
        events: list[tuple[str, EventType, str]] = []  # changes as JSON text
        for _, external_id, given in rows:
            contact = known.get(external_id)
            if contact is None:  # new, as `contacts.put` would create it
                after = merged({**_DEFAULTS, "attributes": {}}, given)
                known[external_id] = _Contact(None, after)
                events.append((external_id, EventType.CONTACT_CREATED, created_json(after)))
                created += 1
                continue
            after = merged(contact.state, given)
            delta = changes(contact.state, after)
            if not delta:
                unchanged += 1
                continue
            contact.state = after
            contact.dirty = contact.id is not None  # one created in this batch is inserted as is
            events.append((external_id, EventType.CONTACT_UPDATED, json.dumps(delta)))
            updated += 1
        connection = session.connection()
        new = [(external_id, c.state) for external_id, c in known.items() if c.id is None]
        if new:
            for external_id, contact_id in self._inserts.contacts(connection, new, now=now).items():
                known[external_id].id = contact_id
        dirty = [
            {"_id": c.id, "_updated_at": now, **{f"_{k}": v for k, v in c.state.items()}}
            for c in known.values()
            if c.dirty
        ]
        if dirty:
            session.execute(_UPDATE, dirty)
        if events:
            self._inserts.events(
                connection,
                [
                    (cast(int, known[external_id].id), type_, delta)
                    for external_id, type_, delta in events
                ],
                actor=self._actor,
                now=now,
            )
        if self._subscriber is None:
            return Counts(created, updated, unchanged)
        people = [(line, cast(int, known[external_id].id)) for line, external_id, _ in rows]
        subscribed, refused = self._subscriber.subscribe(session, people)
        return Counts(created, updated, unchanged, subscribed, tuple(refused))


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
