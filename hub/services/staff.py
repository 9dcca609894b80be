"""Staff users of the console: e-mail, role, argon2id password hash, enabled or not, and
the employee contact that is the user's own record (whose clients are their "my clients").

Changing a password or disabling a user ends every session the user has, in the same
transaction, so a stolen or forgotten browser is signed out the moment the change commits.
Every change is written to the audit log in that transaction too (never the password or its
hash), whichever door it came through: the console, the CLI or set-up code.
"""

from __future__ import annotations

import secrets
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Contact, Erasure, StaffUser
from hub.domain import ActorKind, ContactKind, SessionRevoked, StaffRole
from hub.fields import no_control_characters, normalize_email, normalize_external_id
from hub.services import audit, staff_sessions
from hub.services.actor import Actor
from hub.services.errors import Conflict, InvalidField, NotFound
from hub.services.hashing import AddressHasher

MIN_PASSWORD = 12
MAX_PASSWORD = 1000  # what the sign-in form reads of a password; a longer one could not sign in
# What set-up code (tests, a bench, a seeding script) is recorded as when it names no actor;
# the console and the CLI always name theirs.
SET_UP = Actor(kind=ActorKind.SYSTEM, name="system", source="set-up")


def _hashed(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidField("password", f"must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidField("password", f"must be at most {MAX_PASSWORD} characters")
    return PasswordHasher().hash(password)


def generated_password() -> str:
    """A password for someone else to use once and change: 128 random bits, 22 characters."""
    return secrets.token_urlsafe(16)


def _email(value: str) -> str:
    try:
        return normalize_email(value.strip())
    except ValueError as exc:
        raise InvalidField("email", str(exc)) from None


def snapshot(user: StaffUser) -> dict[str, Any]:
    """What the audit log keeps of a user: never the password hash."""
    return {"email": user.email, "role": user.role.value, "disabled": user.disabled}


def create(
    session: Session,
    email: str,
    password: str,
    role: StaffRole,
    *,
    actor: Actor = SET_UP,
) -> StaffUser:
    user = StaffUser(
        email=_email(email),
        password_hash=_hashed(password),
        role=role,
        disabled=False,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise Conflict(f"a staff user {user.email!r} already exists") from None
    audit.record(
        session,
        actor=actor,
        action=audit.Action.CREATED,
        resource=audit.Resource.STAFF_USER,
        key=user.email,
        after=snapshot(user),
    )
    return user


def get(session: Session, email: str) -> StaffUser:
    user = session.scalar(select(StaffUser).where(StaffUser.email == email.strip()))
    if user is None:
        raise NotFound(f"no staff user {email!r}")
    return user


def by_id(session: Session, user_id: int) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None:
        raise NotFound(f"no staff user {user_id}")
    return user


def everyone(session: Session) -> list[StaffUser]:
    """Every staff user, by e-mail (a console has tens, not thousands)."""
    return list(session.scalars(select(StaffUser).order_by(StaffUser.email)))


def set_password(session: Session, email: str, password: str, *, actor: Actor = SET_UP) -> int:
    """A new password; returns how many live sessions it ended (all of the user's)."""
    user = get(session, email)
    user.password_hash = _hashed(password)
    ended = staff_sessions.revoke_all(session, user.id, SessionRevoked.PASSWORD_CHANGED)
    audit.record(
        session,
        actor=actor,
        action=audit.Action.PASSWORD_RESET,
        resource=audit.Resource.STAFF_USER,
        key=user.email,
        after={"sessions_ended": ended},
    )
    return ended


def set_disabled(session: Session, email: str, disabled: bool, *, actor: Actor = SET_UP) -> int:
    """Disable (ending every session) or enable a user; returns how many sessions it ended.
    Enabling revives no session: the user signs in again. The last enabled admin cannot be
    disabled, so the console always has someone who can manage it."""
    user = get(session, email)
    if disabled and not user.disabled and user.role is StaffRole.ADMIN:
        _keep_an_admin(session, user)
    before = snapshot(user)
    user.disabled = disabled
    ended = staff_sessions.revoke_all(session, user.id, SessionRevoked.DISABLED) if disabled else 0
    if before["disabled"] != disabled:
        audit.record(
            session,
            actor=actor,
            action=audit.Action.DISABLED if disabled else audit.Action.ENABLED,
            resource=audit.Resource.STAFF_USER,
            key=user.email,
            before=before,
            after=snapshot(user) | ({"sessions_ended": ended} if disabled else {}),
        )
    return ended


def set_role(session: Session, email: str, role: StaffRole, *, actor: Actor = SET_UP) -> bool:
    """Give a user another role, from their next page on; whether it changed. The last
    enabled admin keeps the admin role."""
    user = get(session, email)
    if user.role is role:
        return False
    if user.role is StaffRole.ADMIN and not user.disabled:
        _keep_an_admin(session, user)
    before = snapshot(user)
    user.role = role
    audit.record(
        session,
        actor=actor,
        action=audit.Action.UPDATED,
        resource=audit.Resource.STAFF_USER,
        key=user.email,
        before=before,
        after=snapshot(user),
    )
    return True


def sign_out_everywhere(session: Session, email: str, *, actor: Actor = SET_UP) -> int:
    """End every session of the user (a lost laptop); returns how many were live."""
    user = get(session, email)
    ended = staff_sessions.revoke_all(session, user.id, SessionRevoked.SIGNED_OUT_EVERYWHERE)
    audit.record(
        session,
        actor=actor,
        action=audit.Action.SIGNED_OUT,
        resource=audit.Resource.STAFF_USER,
        key=user.email,
        after={"sessions_ended": ended},
    )
    return ended


EMPLOYEE_FIELD = "employee"  # the field a refused link names
MAX_EXTERNAL_ID = 255


def employee_of(session: Session, user: StaffUser) -> Contact | None:
    """The user's own employee record, if linked."""
    return None if user.contact_id is None else session.get(Contact, user.contact_id)


def link_employee(
    session: Session,
    email: str,
    external_id: str,
    *,
    hasher: AddressHasher,
    actor: Actor = SET_UP,
) -> bool:
    """Link the user to their own employee record, whose clients the console shows them as
    "my clients"; an empty `external_id` unlinks. Whether it changed. Refused (naming
    `employee`) unless the id is an existing contact of kind employee: an erased one is
    said to be erased, as the erasures' keyed hashes tell."""
    user = get(session, email)
    wanted = normalize_external_id(external_id.strip())
    contact = _employee(session, wanted, hasher) if wanted else None
    if user.contact_id == (contact.id if contact else None):
        return False
    was = employee_of(session, user)
    user.contact_id = contact.id if contact else None
    audit.record(
        session,
        actor=actor,
        action=audit.Action.UPDATED,
        resource=audit.Resource.STAFF_USER,
        key=user.email,
        before={"employee": was.external_id if was else None},
        after={"employee": contact.external_id if contact else None},
    )
    return True


def _employee(session: Session, external_id: str, hasher: AddressHasher) -> Contact:
    if len(external_id) > MAX_EXTERNAL_ID:
        raise InvalidField(EMPLOYEE_FIELD, f"must be at most {MAX_EXTERNAL_ID} characters")
    try:
        external_id = no_control_characters(external_id)
    except ValueError as exc:  # a NUL is a 500 on PostgreSQL, whose text cannot hold one
        raise InvalidField(EMPLOYEE_FIELD, str(exc)) from None
    contact = session.scalar(select(Contact).where(Contact.external_id == external_id))
    if contact is None:
        erased = session.scalar(
            select(Erasure.id).where(Erasure.subject_hash == hasher.subject(external_id)).limit(1)
        )
        if erased is not None:
            raise InvalidField(EMPLOYEE_FIELD, f"the contact {external_id!r} was erased")
        raise InvalidField(EMPLOYEE_FIELD, f"no contact with external id {external_id!r}")
    if contact.kind is not ContactKind.EMPLOYEE:
        raise InvalidField(
            EMPLOYEE_FIELD, f"{external_id!r} is a {contact.kind.value}, not an employee"
        )
    return contact


def _keep_an_admin(session: Session, leaving: StaffUser) -> None:
    """Refuse a change that would leave no enabled admin. Every enabled admin's row is locked
    first (PostgreSQL), so two admins demoting each other at once cannot both succeed: the
    second waits, then no longer counts the first."""
    admins = session.scalars(
        select(StaffUser.id)
        .where(StaffUser.role == StaffRole.ADMIN, StaffUser.disabled.is_(False))
        .with_for_update()
    ).all()
    if not set(admins) - {leaving.id}:
        raise Conflict(
            f"{leaving.email} is the last enabled admin: make another user an admin first"
        )
