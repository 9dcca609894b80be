"""Request-scoped dependencies, as `Annotated` aliases so a route's needs fit on one line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hub.domain import ActorKind, Scope
from hub.runtime import Runtime
from hub.services.actor import Actor
from hub.services.apikeys import Principal

# The dependencies are `async def` where they do no I/O: FastAPI runs a plain `def` one on a
# worker thread, and each such hop cost more CPU than the work itself.


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """A session per request. Routes commit explicitly; anything uncommitted is rolled back.

    A plain `def`, so FastAPI opens and closes it on a worker thread (closing may roll back
    over the connection). An `async def` version hung the embedded server: after a run of
    16 connections, wrk's 64 got no answer, every thread waiting for SQLite's write lock or
    a pooled connection. `bench/api_load.py` shows it; no test has reproduced it yet.
    """
    with runtime.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <api key>`")


async def _principal(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The key's owner, remembered for a few seconds or looked up in a read-only session
    (on a worker thread).

    Never in the request's session: on SQLite its first statement takes the write lock, and
    a dependency runs on another worker thread than the route. Holding the lock across that
    hop deadlocked the embedded server once more requests waited than there were threads
    (64 connections: the holder could never get a thread to commit on).
    """
    unauthorized = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(
            401, "missing API key: send Authorization: Bearer <key>", headers=unauthorized
        )
    secret = credentials.credentials
    principal = runtime.keys.remembered(secret)
    if principal is None:
        principal = await run_in_threadpool(runtime.keys.principal, secret)
    if principal is None:
        raise HTTPException(401, "unknown or revoked API key", headers=unauthorized)
    return principal


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    async def dependency(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if not principal.allows(scope):
            raise HTTPException(403, f"this API key lacks the {scope.value!r} scope")
        return principal

    return dependency


def actor_for(request: Request, principal: Principal, source: str = "api") -> Actor:
    return Actor(
        kind=ActorKind.API_KEY,
        name=principal.name,
        source=source,
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


ContactsScope = Annotated[Principal, Depends(require(Scope.CONTACTS))]
AdminScope = Annotated[Principal, Depends(require(Scope.ADMIN))]
NotifyScope = Annotated[Principal, Depends(require(Scope.NOTIFY))]
CampaignsScope = Annotated[Principal, Depends(require(Scope.CAMPAIGNS))]
MetricsScope = Annotated[Principal, Depends(require(Scope.METRICS))]


async def authenticated(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    """Any key that may use the API: for reading shared configuration such as topics. A key
    with only the `metrics` scope is a scraper's and reaches nothing but `GET /metrics`."""
    if not principal.scopes - {Scope.METRICS}:
        raise HTTPException(403, "this API key has only the 'metrics' scope: GET /metrics")
    return principal


AnyScope = Annotated[Principal, Depends(authenticated)]


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes the POST safe to retry: the same key and body replay the first "
        "answer for 48 hours (`Idempotent-Replayed: true`); the same key with another body "
        "is 422. A retry that arrives while the first is still at work waits for it, or is "
        "409 `idempotency_in_progress` (retry shortly) where the work is long (a batch).",
    ),
]
