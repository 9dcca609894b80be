"""Request-scoped dependencies, as `Annotated` aliases so a route's needs fit on one line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from hub.domain import ActorKind, Scope
from hub.runtime import Runtime
from hub.services.actor import Actor
from hub.services.apikeys import Principal


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """A session per request. Routes commit explicitly; anything uncommitted is rolled back."""
    with runtime.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <api key>`")


def _principal(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The key's owner, remembered for a few seconds or looked up in a read-only session.

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
    principal = runtime.keys.principal(credentials.credentials)
    if principal is None:
        raise HTTPException(401, "unknown or revoked API key", headers=unauthorized)
    return principal


def require(scope: Scope) -> Callable[..., Principal]:
    def dependency(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
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


def authenticated(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    """Any valid key: for reading shared configuration such as topics."""
    return principal
