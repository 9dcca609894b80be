"""Cursor paging for list endpoints: the query parameters, and the page built from rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Protocol, TypeVar

from fastapi import Path, Query

from hub.schemas.base import Cursor, Page, decode_cursor, encode_cursor

Limit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
# A row id in a path: bounded to what a 64-bit column holds, so a huge number is a 422
# naming the parameter, not an overflow inside the database driver.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The id Hub returned.")]
CursorQuery = Annotated[Cursor | None, Query(description="`next_cursor` of the previous page.")]


class HasId(Protocol):
    @property
    def id(self) -> int: ...


R = TypeVar("R", bound=HasId)
T = TypeVar("T")


def position(cursor: str | None) -> int | None:
    """The row id a cursor points after (or before, for newest-first lists)."""
    return decode_cursor(cursor) if cursor else None


def page_of(rows: Sequence[R], limit: int, item: Callable[[R], T]) -> Page[T]:
    """`rows` was fetched with `limit + 1`: the extra row only says that a next page exists."""
    items = rows[:limit]
    more = len(rows) > limit
    return Page[T](
        items=[item(row) for row in items],
        next_cursor=encode_cursor(items[-1].id) if more else None,
    )
