"""API keys: created once with a secret shown once, stored as a hash, checked per request.

Creating and revoking a key is written to the audit log in the same transaction: its name and
scopes, never the secret or its hash.
"""

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
from hub.domain import ActorKind, Scope
from hub.services import audit
from hub.services.actor import Actor
from hub.services.errors import Conflict, InvalidField, NotFound
from hub.services.hashing import token_hash

PREFIX = "hub_"
MAX_NAME = 100
# What set-up code (tests, a bench) is recorded as when it names no actor; the console, the
# CLI and the API always name theirs.
SET_UP = Actor(kind=ActorKind.SYSTEM, name="system", source="set-up")


@dataclass(frozen=True)
class Principal:
    """An authenticated API caller."""

    name: str
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes


def create(session: Session, name: str, scopes: list[Scope], *, actor: Actor = SET_UP) -> str:
    """Store a new key and return its secret, which is not kept anywhere."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidField("name", f"must be 1 to {MAX_NAME} printable characters")
    if not scopes:
        raise InvalidField("scopes", "give the key at least one scope")
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
    audit.record(
        session,
        actor=actor,
        action=audit.Action.CREATED,
        resource=audit.Resource.API_KEY,
        key=name,
        after={"name": name, "scopes": key.scopes},
    )
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


def revoke(session: Session, name: str, *, actor: Actor = SET_UP) -> bool:
    """Revoke the active key of that name; False when there is none."""
    key = session.scalar(select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)))
    if key is None:
        return False
    key.revoked_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action=audit.Action.REVOKED,
        resource=audit.Resource.API_KEY,
        key=name,
        before={"revoked_at": None},
        after={"revoked_at": key.revoked_at.isoformat()},
    )
    return True


def get(session: Session, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"no API key {key_id}")
    return key


def named(session: Session, name: str) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if key is None:
        raise NotFound(f"no API key named {name!r}")
    return key


def everyone(session: Session) -> list[ApiKey]:
    """Every key, active ones first, then newest first."""
    return list(
        session.scalars(select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc()))
    )
