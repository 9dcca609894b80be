"""Idempotency-Key on POST (RELIABILITY 8): the first answer is kept and replayed.

Two ways to hold it. `remember` stores the key with its answer in the transaction that does
the work, one statement: a second request with the same key waits for the first to commit
(on the unique index in PostgreSQL, on the write lock in SQLite), fails to insert, and
replays what `stored` finds. That is the fast path (POST /v1/notifications). `reserve` ...
`complete` reserves the key in its own committed transaction first, for work that runs too
long to hold a lock through: a replay arriving meanwhile gets 409.
Keys are scoped per API key and kept 48 hours (the sweeper deletes older ones).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import Base, utcnow
from hub.db.models import IdempotencyKey
from hub.services.errors import Conflict, HubError

# A reservation this old belongs to a request that died before answering: take it over.
ABANDONED_AFTER = dt.timedelta(seconds=60)


class KeyReused(HubError):
    code = "idempotency_key_reused"


class KeyInProgress(Conflict):
    """409 with its own code, so a client can tell "retry shortly" from a real conflict."""

    code = "idempotency_in_progress"


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    body: dict[str, Any]


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


# Built once: these run on every POST that carries a key (see notifications.accept).
_TABLE = Base.metadata.tables[IdempotencyKey.__tablename__]
_RESERVE = insert(_TABLE)
_COMPLETE = (
    update(_TABLE)
    .where(_TABLE.c.owner == bindparam("owner_"), _TABLE.c.key == bindparam("key_"))
    .values(status_code=bindparam("status_"), response=bindparam("response_"))
)


def reserve(session: Session, *, owner: str, key: str, digest: str) -> Replay | None:
    """Reserve the key and commit, or return the stored answer to replay.

    Raises:
        KeyReused: the key was first used with a different request (422).
        Conflict: the first request with this key is still running (409).
    """
    row = {"owner": owner, "key": key, "request_hash": digest}
    for _ in range(3):
        try:
            session.execute(_RESERVE, row | {"created_at": utcnow()})
            session.commit()
        except IntegrityError:
            session.rollback()
        else:
            return None
        replay = stored(session, owner=owner, key=key, digest=digest)
        if replay is not None:
            return replay
        # free again (expired, or left by a request that died and now deleted): once more
    raise KeyInProgress("a request with this Idempotency-Key is still in progress; retry shortly")


def remember(
    session: Session, *, owner: str, key: str, digest: str, status_code: int, body: Any
) -> None:
    """Store the key with its answer inside the transaction that did the work; the caller
    commits. Raises IntegrityError (at once, or at the commit) when the key is taken: roll
    back and answer with `stored`."""
    row = {
        "owner": owner,
        "key": key,
        "request_hash": digest,
        "status_code": status_code,
        "response": body,
        "created_at": utcnow(),
    }
    session.execute(_RESERVE, row)


def stored(session: Session, *, owner: str, key: str, digest: str) -> Replay | None:
    """The answer a key was first given, to replay; None when the key is free again (never
    used, expired, or left behind by a request that died long ago: then it is deleted).

    Raises:
        KeyReused: the key was first used with a different request (422).
        Conflict: the first request with this key is still running (409).
    """
    row = session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.owner == owner, IdempotencyKey.key == key)
    )
    if row is None:
        return None
    if row.request_hash != digest:
        raise KeyReused(
            "this Idempotency-Key was already used with a different request; use a new key",
            details=[{"field": "Idempotency-Key", "message": "used before with another body"}],
        )
    if row.status_code is not None and row.response is not None:
        return Replay(row.status_code, row.response)
    if utcnow() - row.created_at < ABANDONED_AFTER:
        raise KeyInProgress(
            "a request with this Idempotency-Key is still in progress; retry shortly"
        )
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.id == row.id, IdempotencyKey.created_at == row.created_at
        )
    )
    session.commit()
    return None


def complete(session: Session, *, owner: str, key: str, status_code: int, body: Any) -> None:
    """Store the answer; call inside the transaction that does the work."""
    answer = {"owner_": owner, "key_": key, "status_": status_code, "response_": body}
    session.execute(_COMPLETE, answer)


def release(session: Session, *, owner: str, key: str) -> None:
    """The request failed before doing anything: let the same key be tried again."""
    session.rollback()
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.owner == owner,
            IdempotencyKey.key == key,
            IdempotencyKey.status_code.is_(None),
        )
    )
    session.commit()
