"""Staff users of the console: e-mail, role, argon2id password hash, enabled or not.

Changing a password or disabling a user ends every session the user has, in the same
transaction, so a stolen or forgotten browser is signed out the moment the change commits.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import StaffUser
from hub.domain import SessionRevoked, StaffRole
from hub.services import staff_sessions
from hub.services.errors import Conflict, NotFound

MIN_PASSWORD = 12


def _hashed(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must be at least {MIN_PASSWORD} characters")
    return PasswordHasher().hash(password)


def create(session: Session, email: str, password: str, role: StaffRole) -> StaffUser:
    user = StaffUser(
        email=email,
        password_hash=_hashed(password),
        role=role,
        disabled=False,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise Conflict(f"a staff user {email!r} already exists") from None
    return user


def get(session: Session, email: str) -> StaffUser:
    user = session.scalar(select(StaffUser).where(StaffUser.email == email.strip()))
    if user is None:
        raise NotFound(f"no staff user {email!r}")
    return user


def set_password(session: Session, email: str, password: str) -> int:
    """A new password; returns how many live sessions it ended (all of the user's)."""
    user = get(session, email)
    user.password_hash = _hashed(password)
    return staff_sessions.revoke_all(session, user.id, SessionRevoked.PASSWORD_CHANGED)


def set_disabled(session: Session, email: str, disabled: bool) -> int:
    """Disable (ending every session) or enable a user; returns how many sessions it ended.
    Enabling revives no session: the user signs in again."""
    user = get(session, email)
    user.disabled = disabled
    if not disabled:
        return 0
    return staff_sessions.revoke_all(session, user.id, SessionRevoked.DISABLED)


def sign_out_everywhere(session: Session, email: str) -> int:
    """End every session of the user (a lost laptop); returns how many were live."""
    user = get(session, email)
    return staff_sessions.revoke_all(session, user.id, SessionRevoked.SIGNED_OUT_EVERYWHERE)
