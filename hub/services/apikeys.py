"""API keys: created once with a secret shown once, stored as a hash, checked per request."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.db.base import utcnow
from hub.db.models import ApiKey
from hub.domain import Scope
from hub.services.errors import Conflict
from hub.services.hashing import token_hash

PREFIX = "hub_"


@dataclass(frozen=True)
class Principal:
    """An authenticated API caller."""

    name: str
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes


def create(session: Session, name: str, scopes: list[Scope]) -> str:
    """Store a new key and return its secret, which is not kept anywhere."""
    secret = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        token_hash=token_hash(secret),
        scopes=sorted({s.value for s in scopes}),
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(key)
    except IntegrityError:
        raise Conflict(f"an API key named {name!r} already exists") from None
    return secret


def authenticate(session: Session, secret: str) -> Principal | None:
    if not secret.startswith(PREFIX) or len(secret) > 100:
        return None
    key = session.scalar(
        select(ApiKey).where(ApiKey.token_hash == token_hash(secret), ApiKey.revoked_at.is_(None))
    )
    if key is None:
        return None
    return Principal(name=key.name, scopes=frozenset(Scope(s) for s in key.scopes))


class Keys:
    """Known keys remembered for `ttl` seconds, so a request costs no look-up in the common
    case; a revocation (from any process) takes effect within `ttl`. Unknown keys are never
    remembered: guessing fills nothing."""

    def __init__(
        self,
        reads: sessionmaker[Session],
        *,
        ttl: float = 5.0,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reads = reads
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._known: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def remembered(self, secret: str) -> Principal | None:
        """The key's owner if it was looked up within `ttl`; never touches the database."""
        if not secret.startswith(PREFIX) or len(secret) > 100:
            return None
        with self._lock:
            hit = self._known.get(token_hash(secret))
        return hit[1] if hit is not None and self._clock() - hit[0] < self._ttl else None

    def principal(self, secret: str) -> Principal | None:
        if not secret.startswith(PREFIX) or len(secret) > 100:
            return None
        if (known := self.remembered(secret)) is not None:
            return known
        digest = token_hash(secret)
        now = self._clock()
        with self._reads() as session:
            found = authenticate(session, secret)
        with self._lock:
            if found is None:
                self._known.pop(digest, None)
            else:
                if len(self._known) >= self._size:
                    self._known.clear()  # a burst of distinct keys: start over
                self._known[digest] = (now, found)
        return found


def revoke(session: Session, name: str) -> bool:
    key = session.scalar(select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)))
    if key is None:
        return False
    key.revoked_at = utcnow()
    return True
