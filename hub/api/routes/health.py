"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from hub import gauges
from hub.api import errors
from hub.db import migrate
from hub.queue import FAN_OUT_QUEUE, queue_depth
from hub.web.deps import MetricsScope, RuntimeDep

router = APIRouter(tags=["ops"])


@router.get("/healthz", operation_id="ops.health", summary="Liveness probe")
def healthz() -> dict[str, str]:
    """The process answers: `{"status": "ok"}`. Needs no key; reads nothing."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="ops.ready",
    summary="Readiness probe",
    responses={
        503: {
            "description": "The database or the broker does not answer, or migrations are pending"
        }
    },
)
def readyz(runtime: RuntimeDep) -> JSONResponse:
    """The database answers and its schema is current; the broker answers.

    The body names each (`database`, `broker`): `ok`, `migrations pending`, or the error's
    type. Needs no key."""
    found = {"database": _database(runtime), "broker": _broker(runtime)}
    ready = all(value == "ok" for value in found.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", **found}, 200 if ready else 503
    )


def _database(runtime: RuntimeDep) -> str:
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return "migrations pending" if migrate.pending(runtime.engine) else "ok"
    except Exception as exc:
        return type(exc).__name__


def _broker(runtime: RuntimeDep) -> str:
    """A notification accepted now must reach a worker: the queue must take it."""
    try:
        queue_depth(runtime.broker, FAN_OUT_QUEUE)
    except Exception as exc:
        return type(exc).__name__
    return "ok"


@router.get(
    "/metrics",
    operation_id="ops.metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        401: errors.RESPONSES[401],
        403: errors.RESPONSES[403],
    },
)
def prometheus(runtime: RuntimeDep, _: MetricsScope) -> Response:
    """Counters of this process, and the backlog read from the database and the broker.
    Needs an API key with the `metrics` scope (`hub apikey create prometheus --scope metrics`)."""
    backlog = gauges.Backlog(runtime.reads, runtime.broker)
    return Response(gauges.exposition(backlog), media_type=gauges.CONTENT_TYPE_LATEST)
