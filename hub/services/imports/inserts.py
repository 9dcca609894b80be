"""The import's two hot INSERTs (new contacts, their events) as one driver executemany each.

Through a Core `insert()`, SQLAlchemy processes every value of every row (the UTC timestamp
decorator, enum and JSON types, parameter dictionaries, RETURNING rows): measured at about
half an import's writing time. Here the statement is compiled once per dialect, values that
are the same for the whole batch are converted once with the columns' own bind processors,
and the rows go to `exec_driver_sql`, which keeps SQLAlchemy's events, error translation
(`IntegrityError`) and transaction. Correct on SQLite (sqlite3) and PostgreSQL (psycopg).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Column, Connection, Dialect, Table, insert, select

from hub.db.models import Contact, ContactEvent, new_link_key
from hub.domain import EventType
from hub.schemas.contacts import CONTACT_FIELDS
from hub.services.actor import Actor

_CONTACTS = cast(Table, Contact.__table__)
_EVENTS = cast(Table, ContactEvent.__table__)
# Plain text columns: their values go to the driver as they are (checked per dialect).
_TEXT_FIELDS = tuple(name for name in CONTACT_FIELDS if name != "kind")
_CONTACT_COLUMNS = (
    "external_id",
    "kind",
    *_TEXT_FIELDS,
    "attributes",
    "link_key",
    "owner_id",
    "created_at",
    "updated_at",
)
_texts = itemgetter(*_TEXT_FIELDS)
_EVENT_COLUMNS = (
    "contact_id",
    "occurred_at",
    "type",
    "actor_kind",
    "actor",
    "source",
    "topic_key",
    "channel",
    "changes",
    "reason",
    "ip",
    "user_agent",
)
_PYFORMAT = re.compile(r"%\((\w+)\)s")
_IDS = select(_CONTACTS.c.id, _CONTACTS.c.external_id)


@dataclass(frozen=True, slots=True)
class _Statement:
    """An INSERT of given columns in the dialect's SQL, taking positional parameters."""

    sql: str

    @classmethod
    def compile(cls, table: Table, columns: tuple[str, ...], dialect: Dialect) -> _Statement:
        # inline(): no RETURNING of the new ids, which PostgreSQL would otherwise add.
        compiled = insert(table).inline().compile(dialect=dialect, column_keys=list(columns))
        sql = compiled.string
        if compiled.positional:  # sqlite3's ?
            order = tuple(compiled.positiontup or ())
        else:  # psycopg's %(name)s, made %s: tuples cost psycopg less than dictionaries
            order = tuple(_PYFORMAT.findall(sql))
            sql = _PYFORMAT.sub("%s", sql)
        if order != columns:
            raise AssertionError(f"unexpected parameters {order} in {sql}")
        return cls(sql)

    def run(self, connection: Connection, rows: list[tuple[Any, ...]]) -> None:
        """`rows`: values in the columns' order, already in the driver's form."""
        connection.exec_driver_sql(self.sql, rows)


def _converter(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """The column's bind processing (what a Core insert applies to each value), as one call."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else _same


def _same(value: Any) -> Any:
    return value


class DriverInserts:
    """The two statements, compiled for one connection's dialect on first use."""

    def __init__(self) -> None:
        self._compiled: dict[str, tuple[_Statement, _Statement]] = {}

    def _statements(self, dialect: Dialect) -> tuple[_Statement, _Statement]:
        if dialect.name not in self._compiled:
            for name in _TEXT_FIELDS:
                if _converter(_CONTACTS.c[name], dialect) is not _same:
                    raise AssertionError(f"contacts.{name} needs bind processing")
            self._compiled[dialect.name] = (
                _Statement.compile(_CONTACTS, _CONTACT_COLUMNS, dialect),
                _Statement.compile(_EVENTS, _EVENT_COLUMNS, dialect),
            )
        return self._compiled[dialect.name]

    def contacts(
        self,
        connection: Connection,
        new: Sequence[tuple[str, dict[str, Any], int | None]],
        *,
        now: Any,
    ) -> dict[str, int]:
        """Insert contacts (external id, full state, owner's id); return their ids by
        external id.

        sqlite3's executemany cannot return rows, so the ids come from one SELECT by the
        unique external ids, inside the same transaction.
        """
        dialect = connection.dialect
        statement, _ = self._statements(dialect)
        c = _CONTACTS.c
        stamp = _converter(c.created_at, dialect)(now)
        kind, attributes = _converter(c.kind, dialect), _converter(c.attributes, dialect)
        owner = _converter(c.owner_id, dialect)
        statement.run(
            connection,
            [
                (
                    external_id,
                    kind(state["kind"]),
                    *_texts(state),
                    attributes(state["attributes"]),
                    new_link_key(),
                    owner(owner_id),
                    stamp,
                    stamp,
                )
                for external_id, state, owner_id in new
            ],
        )
        wanted = [external_id for external_id, _, _ in new]
        found = connection.execute(_IDS.where(c.external_id.in_(wanted)))
        return {external_id: contact_id for contact_id, external_id in found}

    def events(
        self,
        connection: Connection,
        events: Sequence[tuple[int, EventType, str]],
        *,
        actor: Actor,
        now: Any,
    ) -> None:
        """Append timeline events (contact id, type, changes as JSON text) by `actor` at `now`.

        The JSON text goes to the driver as it is: SQLite stores text (what SQLAlchemy's JSON
        type would store, json.dumps' output), PostgreSQL casts it (the statement says
        `::JSONB`).
        """
        dialect = connection.dialect
        _, statement = self._statements(dialect)
        c = _EVENTS.c
        type_ = _converter(c.type, dialect)
        types = {t: type_(t) for t in EventType}
        # Everything but the contact, the type and the changes is the same for the batch.
        constant = (
            _converter(c.actor_kind, dialect)(actor.kind),
            actor.name,
            actor.source,
            None,  # topic_key
            None,  # channel
        )
        tail = (None, actor.ip, actor.user_agent[:512] if actor.user_agent else None)
        at = _converter(c.occurred_at, dialect)(now)
        statement.run(
            connection,
            [
                (contact_id, at, types[event_type], *constant, delta, *tail)
                for contact_id, event_type, delta in events
            ],
        )
