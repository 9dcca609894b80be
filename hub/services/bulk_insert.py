"""A multi-row INSERT that answers each row's new id, in the rows' order, on every backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, insert
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
