"""Reading the fields of a provider's JSON event, which Hub does not trust to have the types
its documentation shows: a text that is a string with something in it, a list of objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def text(value: Any) -> str | None:
    """The string, stripped; None for an empty one or anything that is not a string."""
    return value.strip() or None if isinstance(value, str) else None


def objects(value: Any) -> list[Mapping[str, Any]]:
    """The JSON objects in a list; [] when it is no list."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
