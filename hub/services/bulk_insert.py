"""Multi-row INSERTs on every backend: each row's new id in the rows' order, and rows put in
the driver's form (JSON text, bound timestamps) once per distinct value for its executemany."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import (  # type: ignore[attr-defined]
    c_make_encoder,
    encode_basestring,
    encode_basestring_ascii,
)
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect, Table, func, insert, select
from sqlalchemy.orm import Session


def ids_in_order(session: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert `rows` into `table` (its primary key `id`, given by the database); their ids.

    PostgreSQL: SQLAlchemy's `sort_by_parameter_order` ties each RETURNING row to its
    parameters in one statement per thousand rows. SQLite cannot (SQLAlchemy then inserts a
    row at a time, 1,000 statements for 1,000 rows), but it needs no help: a writer holds the
    database's only write lock, and one INSERT gives its rows the next ids in turn, so the
    ids sorted are the rows' ids in order. Checked: they must be as many and consecutive.
    """
    if not rows:
        return []
    if session.get_bind().dialect.name != "sqlite":
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(session.execute(statement, rows).scalars())
    ids = sorted(session.execute(insert(table).returning(table.c.id), rows).scalars())
    if len(ids) != len(rows) or ids[-1] - ids[0] != len(rows) - 1:
        raise RuntimeError(f"{table.name}: {len(rows)} rows inserted, ids not consecutive")
    return ids


_PYFORMAT = re.compile(r"%\((\w+)\)s")


def json_encoder(**options: Any) -> Callable[[Any], str]:
    """`json.dumps` with these options, without building an encoder per call (json.dumps
    builds one for every value: most of its cost for the small values a row holds)."""
    encoder = json.JSONEncoder(**options)
    if c_make_encoder is None:  # not CPython: the plain way
        return encoder.encode
    iterencode = c_make_encoder(
        None,  # no circular check: the values come from parsed JSON
        encoder.default,
        encode_basestring_ascii if encoder.ensure_ascii else encode_basestring,
        None,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )

    def encode(value: Any) -> str:
        if isinstance(value, str):  # the C encoder wants a container at the top
            return encoder.encode(value)
        return "".join(iterencode(value, 0))

    return encode


# The JSON text SQLAlchemy's JSON type stores (json.dumps' defaults), for JSON columns.
json_text = json_encoder()


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str  # the INSERT in the driver's paramstyle, positional
    with_id: bool  # PostgreSQL: the ids are drawn first and given in each row


class DriverInsert:
    """An INSERT of `columns` into `table` (primary key `id`) as one driver executemany.

    Through Core `insert()`, SQLAlchemy binds every value of every row through its column
    type (the UTC decorator, the enum, a json.dumps for each JSON value) and builds a
    dictionary per row: measured at most of a 1,000-row batch's insert. Here each row is a
    tuple of values already in the driver's form, so what the batch shares (timestamps,
    states, the same JSON) is converted once: `convert` gives a column's own bind
    processing, and JSON columns take JSON text (SQLite stores it as SQLAlchemy's JSON type
    would; PostgreSQL casts it, the compiled statement saying `::JSONB`). `exec_driver_sql`
    keeps SQLAlchemy's transaction, events and error translation (IntegrityError).
    """

    def __init__(self, table: Table, columns: tuple[str, ...]) -> None:
        unknown = set(columns) - {c.key for c in table.columns}
        if unknown:
            raise ValueError(f"{table.name} has no columns {sorted(unknown)}")
        self.table = table
        # In the table's order, as the compiled statement binds them: give rows in this one.
        self.columns = tuple(c.key for c in table.columns if c.key in columns)
        self._compiled: dict[tuple[str, bool], _Compiled] = {}

    def convert(self, dialect: Dialect, column: str) -> Callable[[Any], Any]:
        """The column's bind processing (what a Core insert applies to each value)."""
        process = self.table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
        return process if process is not None else _same

    def ids(self, connection: Connection, rows: list[tuple[Any, ...]]) -> list[int]:
        """Insert `rows` (values in `columns`' order, in the driver's form); their new ids in
        the rows' order.

        PostgreSQL: the ids are drawn from the table's sequence first and inserted with the
        rows. SQLite: a transaction holds the database's only write lock (BEGIN IMMEDIATE,
        hub.db.engine), so an executemany gives its rows the next ids in turn, the last being
        `last_insert_rowid()`; checked by counting them.
        """
        if not rows:
            return []
        compiled = self._statement(connection.dialect, ids=True)
        name = self.table.name
        if compiled.with_id:
            drawn = connection.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                (name, len(rows)),
            )
            ids = sorted(int(value) for (value,) in drawn)
            connection.exec_driver_sql(
                compiled.sql, [(i, *row) for i, row in zip(ids, rows, strict=True)]
            )
            return ids
        connection.exec_driver_sql(compiled.sql, rows)
        last = int(connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
        first = last - len(rows) + 1
        counted = connection.execute(
            select(func.count()).where(self.table.c.id.between(first, last))
        ).scalar_one()
        if counted != len(rows):
            raise RuntimeError(f"{name}: {len(rows)} rows inserted, ids not consecutive")
        return list(range(first, last + 1))

    def rows(self, connection: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert `rows` (as for `ids`) when their ids are not wanted."""
        if rows:
            connection.exec_driver_sql(self._statement(connection.dialect, ids=False).sql, rows)

    def _statement(self, dialect: Dialect, *, ids: bool) -> _Compiled:
        if (dialect.name, ids) not in self._compiled:
            with_id = ids and dialect.name != "sqlite"
            columns = ("id", *self.columns) if with_id else self.columns
            # inline(): no RETURNING, which PostgreSQL would otherwise add.
            compiled = insert(self.table).inline().compile(dialect=dialect, column_keys=columns)
            sql = compiled.string
            if compiled.positional:  # sqlite3's ?
                order = tuple(compiled.positiontup or ())
            else:  # psycopg's %(name)s, made %s: tuples cost psycopg less than dictionaries
                order = tuple(_PYFORMAT.findall(sql))
                sql = _PYFORMAT.sub("%s", sql)
            if order != columns:  # a column with a default not named: say so, not misbind
                raise AssertionError(f"unexpected parameters {order} in {sql}")
            self._compiled[dialect.name, ids] = _Compiled(sql, with_id)
        return self._compiled[dialect.name, ids]


def _same(value: Any) -> Any:
    return value


# SQLAlchemy's JSON type stores Python None as JSON null, not SQL NULL: so do we.
_JSON_NULL = "null"
# Values the drivers take as they are (a bool is an int to sqlite3 and psycopg alike).
_PLAIN = frozenset({int, str, bool})


class RowConverter:
    """Rows of values made the driver's, each distinct value converted once per batch.

    Rows are given as dictionaries by column name and come out as tuples in `insert`'s
    column order. JSON values (`json_columns`) are encoded once per object (give the rows of
    a batch the same object for the same value), never by equality, since `1 == True` in
    Python but not in JSON; other values once per equal value, by the column's own bind
    processing.
    """

    def __init__(
        self, insert: DriverInsert, dialect: Dialect, *, json_columns: frozenset[str]
    ) -> None:
        columns = insert.columns
        self._values = itemgetter(*columns)
        self._json_at = tuple(n for n, name in enumerate(columns) if name in json_columns)
        self._bound_at = tuple(
            (n, insert.convert(dialect, name))
            for n, name in enumerate(columns)
            if name not in json_columns
        )
        self._encoded: dict[int, tuple[Any, str]] = {}
        self._bound: dict[tuple[int, type, Any], Any] = {}

    def row(self, values: dict[str, Any]) -> tuple[Any, ...]:
        row = list(self._values(values))
        for n in self._json_at:
            value = row[n]
            if value is None:
                row[n] = _JSON_NULL
                continue
            kept = self._encoded.get(id(value))
            if kept is None or kept[0] is not value:
                kept = (value, json_text(value))
                self._encoded[id(value)] = kept
            row[n] = kept[1]
        for n, process in self._bound_at:
            value = row[n]
            if value is None or type(value) in _PLAIN:
                continue
            key = (n, type(value), value)
            if key not in self._bound:
                self._bound[key] = process(value)
            row[n] = self._bound[key]
        return tuple(row)
