"""The client's exceptions: one per kind of answer, with the JSON error's code, fields, message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pydantic


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field at fault, as the API's `details` names it: `email`, `channels[1]`, `cursor`."""

    field: str
    message: str


class HubError(Exception):
    """Anything Hub refused, or could not be asked.

    `status` is the HTTP status (None when no answer came, or the request was never sent),
    `code` the API's stable machine-readable code, `details` one entry per field at fault,
    `request_id` the `X-Request-Id` the server logged the request under.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "error",
        details: Sequence[FieldError] = (),
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = tuple(details)
        self.request_id = request_id

    @property
    def fields(self) -> list[str]:
        """The names of the fields at fault, in the order the API gave them."""
        return [problem.field for problem in self.details]

    @property
    def field(self) -> str | None:
        """The first field at fault, if any."""
        return self.details[0].field if self.details else None

    def __str__(self) -> str:
        status = f"{self.status} " if self.status is not None else ""
        return f"{status}{self.code}: {self.message}"


class NetworkError(HubError):
    """No answer came (connection refused or reset, a timeout), after the retries allowed."""


class AuthenticationError(HubError):
    """401: no API key, or an unknown or revoked one."""


class PermissionDenied(HubError):
    """403: the key lacks the scope the operation needs."""


class NotFound(HubError):
    """404: no such contact, topic, subscription or notification."""


class Conflict(HubError):
    """409: the operation clashes with the current state (a required topic, a sent notification,
    a request with the same Idempotency-Key still running)."""


class ValidationError(HubError):
    """422 (or refused before sending): `.fields` names each field at fault."""


class RateLimited(HubError):
    """429, after the retries allowed; `retry_after` is how long the server asked to wait."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(HubError):
    """5xx, after the retries allowed."""


_BY_STATUS: Mapping[int, type[HubError]] = {
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: ValidationError,
    429: RateLimited,
}


def from_response(response: httpx.Response, *, retry_after: float | None = None) -> HubError:
    """The exception for a non-2xx answer, read from its `{"error": {...}}` body when it has one."""
    code, message, details = _read_error(response)
    kind = _BY_STATUS.get(response.status_code)
    if kind is None:
        kind = ServerError if response.status_code >= 500 else HubError
    common: dict[str, Any] = {
        "status": response.status_code,
        "code": code,
        "details": details,
        "request_id": response.headers.get("x-request-id"),
    }
    if kind is RateLimited:
        return RateLimited(message, retry_after=retry_after, **common)
    return kind(message, **common)


def _read_error(response: httpx.Response) -> tuple[str, str, list[FieldError]]:
    fallback = response.reason_phrase or f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:  # a proxy's HTML page, or nothing at all
        return "http_error", fallback, []
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "http_error", fallback, []
    details = [
        FieldError(field=str(item.get("field", "body")), message=str(item.get("message", "")))
        for item in error.get("details") or []
        if isinstance(item, dict)
    ]
    return str(error.get("code", "error")), str(error.get("message", fallback)), details


def from_local(exc: pydantic.ValidationError) -> ValidationError:
    """Input the client refused before sending it, named the way the API names fields."""
    details = [
        FieldError(field=field_name(tuple(problem["loc"])), message=_local_message(problem))
        for problem in exc.errors()
    ]
    first = details[0] if details else FieldError("body", "is invalid")
    return ValidationError(
        f"not sent: {first.field}: {first.message}", code="invalid_request", details=details
    )


def field_name(location: Sequence[int | str]) -> str:
    """("channels", 1) -> "channels[1]"; ("escalation", 0, "unless") -> "escalation[0].unless"."""
    name = ""
    for part in location:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _local_message(problem: Any) -> str:
    return str(problem.get("msg", "is invalid")).removeprefix("Value error, ")
