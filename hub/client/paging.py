"""Walking a cursor-paged list lazily: the next page is asked for only when the last is used up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

from hub.schemas.base import Page

T = TypeVar("T")


def paginate(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of every page: `fetch(cursor)` returns one page, None asks for the first."""
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if not page.next_cursor:
            return
        cursor = page.next_cursor


async def apaginate(fetch: Callable[[str | None], Awaitable[Page[T]]]) -> AsyncIterator[T]:
    """`paginate` for the async client: `fetch(cursor)` is awaited once per page."""
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        for item in page.items:
            yield item
        if not page.next_cursor:
            return
        cursor = page.next_cursor
