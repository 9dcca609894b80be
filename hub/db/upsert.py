"""INSERT ... ON CONFLICT DO NOTHING for the two backends, so bulk writes are replay-safe."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_duplicates(session: Session, table: Any) -> Any:
    """An insert that silently skips rows a unique constraint already holds."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()
