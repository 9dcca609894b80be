"""Staff users of the console: e-mail, role, argon2id password hash."""

from __future__ import annotations

from argon2 import PasswordHasher
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import StaffUser
from hub.domain import StaffRole
from hub.services.errors import Conflict

MIN_PASSWORD = 12


def create(session: Session, email: str, password: str, role: StaffRole) -> StaffUser:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must be at least {MIN_PASSWORD} characters")
    user = StaffUser(
        email=email,
        password_hash=PasswordHasher().hash(password),
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
