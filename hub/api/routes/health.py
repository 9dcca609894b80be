"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from hub.api.deps import RuntimeDep
from hub.db import migrate

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "The database does not answer or migrations are pending"}},
)
def readyz(runtime: RuntimeDep) -> JSONResponse:
    """The database answers and its schema is current."""
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        behind = migrate.pending(runtime.engine)
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, 503)
    if behind:
        return JSONResponse({"status": "unavailable", "database": "migrations pending"}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})
