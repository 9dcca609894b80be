"""Base model and cursor paging shared by every schema."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")


class Strict(BaseModel):
    """Input models refuse unknown fields, so a typo is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of a list; follow `next_cursor` for the next."""

    items: list[T] = Field(description="This page's items, in the list's order.")
    next_cursor: str | None = Field(
        None,
        description="Pass as `cursor` for the next page; null on the last page.",
    )


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Raises ValueError on anything that is not a cursor this API handed out."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("not a cursor returned by this API") from None
    prefix, _, number = text.partition(":")
    if prefix != "id" or not number.isdigit() or len(number) > 18:
        raise ValueError("not a cursor returned by this API")
    return int(number)


def check_cursor(cursor: str) -> str:
    """Validate a query-string cursor where it is parsed, so a bad one is a 422 naming it.

    An empty cursor means "from the start", as a client that echoes `next_cursor: null` sends.
    """
    if cursor:
        decode_cursor(cursor)
    return cursor


Cursor = Annotated[
    str,
    StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9_\-]*$"),
    AfterValidator(check_cursor),
]
