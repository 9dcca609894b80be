"""One flat tree of domain errors; the API maps each to an HTTP status in one place."""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(HubError):
    code = "not_found"


class Conflict(HubError):
    code = "conflict"


class Forbidden(HubError):
    """The API key may not do this part of the request (403)."""

    code = "forbidden"


class InvalidField(HubError):
    """A value that is well-formed but not acceptable here (e.g. a channel the topic forbids)."""

    code = "invalid_field"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", details=[{"field": field, "message": message}])
        self.field = field
