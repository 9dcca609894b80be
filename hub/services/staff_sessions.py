"""Console sessions kept server-side: a random token in the browser, its hash in a row.

A session is live while its row is neither revoked nor expired and its user is not disabled;
every console request checks that (one indexed look-up), so revoking a row ends the session
at once in every process. Tokens are 256 random bits, so a plain SHA-256 is enough at rest.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import StaffSession, StaffUser
from hub.domain import SessionRevoked, StaffRole
from hub.services.hashing import token_hash

MAX_TOKEN = 100  # longer cookies are not ours; refused before hashing
# last_seen_at is written at most this often, so browsing the console is not a write per page.
TOUCH_EVERY = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Live:
    """A live session and who it belongs to, read in one query."""

    session_id: int
    user_id: int
    email: str
    role: StaffRole
    last_seen_at: dt.datetime


def start(
    session: Session,
    user_id: int,
    *,
    lifetime: dt.timedelta,
    ip: str | None = None,
    user_agent: str | None = None,
) -> str:
    """A new session for the user; returns its token, which is stored only as a hash."""
    now = utcnow()
    # The user's expired rows are of no further use: forget them while we are here.
    session.execute(
        delete(StaffSession).where(StaffSession.user_id == user_id, StaffSession.expires_at < now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            token_hash=token_hash(token),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            ip=ip[:45] if ip else None,
            user_agent=user_agent[:300] if user_agent else None,
        )
    )
    return token


def find(session: Session, token: str) -> Live | None:
    """The live session this token opens, or None (unknown, revoked, expired, user disabled)."""
    if not token or len(token) > MAX_TOKEN:
        return None
    row = session.execute(
        select(StaffSession, StaffUser)
        .join(StaffUser, StaffUser.id == StaffSession.user_id)
        .where(StaffSession.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    found, user = row
    if found.revoked_at is not None or found.expires_at <= utcnow() or user.disabled:
        return None
    return Live(
        session_id=found.id,
        user_id=user.id,
        email=user.email,
        role=user.role,
        last_seen_at=found.last_seen_at,
    )


def touch(session: Session, live: Live) -> None:
    """Record that the session was used, at most every TOUCH_EVERY."""
    now = utcnow()
    if now - live.last_seen_at >= TOUCH_EVERY:
        session.execute(
            update(StaffSession).where(StaffSession.id == live.session_id).values(last_seen_at=now)
        )


def revoke(session: Session, token: str, reason: SessionRevoked) -> bool:
    """End the session this token opens; False when it was not live."""
    if not token or len(token) > MAX_TOKEN:
        return False
    ended = session.execute(
        update(StaffSession)
        .where(StaffSession.token_hash == token_hash(token), StaffSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    return bool(ended.rowcount)  # type: ignore[attr-defined]


def revoke_all(session: Session, user_id: int, reason: SessionRevoked) -> int:
    """End every session of the user (a password change, disabling, "sign out everywhere")."""
    ended = session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    count: int = ended.rowcount  # type: ignore[attr-defined]
    return count
