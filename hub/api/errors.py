"""Every error leaves as JSON `{"error": {"code", "message", "details"}}`: the one mapping."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from hub.schemas.errors import ErrorOut
from hub.services.errors import Conflict, Forbidden, HubError, InvalidField, NotFound
from hub.services.idempotency import KeyReused

log = logging.getLogger("hub.api")

STATUS: dict[type[HubError], int] = {
    NotFound: 404,
    Conflict: 409,
    Forbidden: 403,
    InvalidField: 422,
    KeyReused: 422,
}
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "service_unavailable",
}


def problem(description: str) -> dict[str, Any]:
    """One documented error answer: the JSON envelope, and when it is given."""
    return {"model": ErrorOut, "description": description}


# What every /v1 operation can answer, whatever it does (hub/app.py adds it to each router).
# The rest is each route's own `responses=`, so a client is told only what can happen: 404
# where the path names a resource, 409 where a state or a race conflicts, 413 where a body
# is capped. The API does not rate-limit, so no operation documents 429.
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem("No API key, or an unknown or revoked one"),
    403: problem("The API key lacks the scope the operation needs"),
    422: problem("Invalid input; `details` names each field at fault"),
}
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: problem("The body is over HUB_MAX_REQUEST_BYTES (1 MiB by default)"),
}


def not_found(what: str) -> dict[int | str, dict[str, Any]]:
    """The 404 of a route whose path names a resource: `what` says which may be missing."""
    return {404: problem(what)}


def conflict(why: str) -> dict[int | str, dict[str, Any]]:
    return {409: problem(why)}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def _status_of(exc: HubError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


def field_name(location: tuple[Any, ...], kind: str = "") -> str:
    if kind == "json_invalid":
        return "body"
    # ("body", "channels", 1) -> "channels[1]"; ("query", "limit") -> "limit"
    parts = list(
        location[1:]
        if location and location[0] in {"body", "query", "path", "header"}
        else location
    )
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def error_message(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        problem = (error.get("ctx") or {}).get("error", "malformed")
        return f"is not valid JSON ({problem}) near character {error['loc'][-1]}"
    message = str(error.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")


def _unreadable_body(cause: BaseException | None) -> str | None:
    """What was wrong with a JSON body FastAPI could not even parse (it answers a bare 400)."""
    if isinstance(cause, UnicodeDecodeError):
        return "is not UTF-8 text"
    if isinstance(cause, RecursionError):
        return "nests too deeply to read"
    if isinstance(cause, ValueError):
        # Python refuses integers of more than 4,300 digits (a denial-of-service guard).
        return "has a number too long to read" if "digits" in str(cause) else "is not JSON"
    return None


def _allowed_methods(request: Request) -> str:
    """Every method some route takes on this path. The router's 405 names only the methods of
    the first route that matched the path, and FastAPI has one route per method."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(HubError)
    async def _hub_error(_: Request, exc: HubError) -> JSONResponse:
        return error_response(_status_of(exc), exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "field": field_name(tuple(e.get("loc", ())), e.get("type", "")),
                "in": (e.get("loc") or ["body"])[0],
                "message": error_message(e),
            }
            for e in exc.errors()
        ]
        first = details[0] if details else {"field": "body", "message": "is invalid"}
        return error_response(
            422, "invalid_request", f"{first['field']}: {first['message']}", details
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        problem = _unreadable_body(exc.__cause__) if exc.status_code == 400 else None
        if problem is not None:
            details = [{"field": "body", "in": "body", "message": problem}]
            return error_response(422, "invalid_request", f"body: {problem}", details)
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return error_response(exc.status_code, code, message, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            500, "internal_error", "an unexpected error occurred; it has been logged"
        )
