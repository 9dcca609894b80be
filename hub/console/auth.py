"""Console sign-in: argon2id passwords, a signed session cookie, CSRF tokens, roles.

The cookie holds the user's id and a random nonce, signed and stamped; it lives 12 hours and
is HttpOnly, SameSite=Strict, and Secure behind https. Each form carries a token derived from
the session (HMAC), and a POST from another origin is refused. Roles rank viewer < marketer
< admin; every page and action names the least role it needs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from itsdangerous import BadSignature, TimestampSigner

from hub.db.models import StaffUser
from hub.domain import StaffRole
from hub.runtime import Runtime
from hub.selfservice.forms import origin_of, same_site

COOKIE = "hub_session"
MAX_AGE = 12 * 3600
RANK = {StaffRole.VIEWER: 0, StaffRole.MARKETER: 1, StaffRole.ADMIN: 2}
_HASHER = PasswordHasher()
# Checked against when the e-mail is unknown, so a wrong address costs what a wrong password
# does and the time of the answer does not tell which addresses are staff.
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class Staff:
    id: int
    email: str
    role: StaffRole
    csrf: str

    def may(self, role: StaffRole) -> bool:
        return RANK[self.role] >= RANK[role]


class SignInRequired(Exception):
    """No valid session: the page sends the browser to the sign-in page."""


class NotAllowed(Exception):
    def __init__(self, role: StaffRole) -> None:
        super().__init__(f"this needs the {role.value} role")
        self.role = role


class Sessions:
    def __init__(self, runtime: Runtime) -> None:
        secrets_ = runtime.settings.link_secrets()
        self._signer = TimestampSigner(list(reversed(secrets_)), salt="hub/console-session")
        self._csrf_key = hashlib.sha256(("hub/console-csrf" + secrets_[0]).encode()).digest()
        self.secure = runtime.settings.public_url.startswith("https://")
        self._origin = origin_of(runtime.settings.public_url)
        self.runtime = runtime

    def sign_in(self, email: str, password: str) -> tuple[StaffUser, str] | None:
        """The user and a new session value, or None (unknown, disabled or wrong password)."""
        with self.runtime.sessions() as session:
            user = session.query(StaffUser).filter(StaffUser.email == email.strip()).first()
            try:
                _HASHER.verify(user.password_hash if user else _DUMMY, password)
            except (VerificationError, InvalidHashError):
                return None
            if user is None or user.disabled:
                return None
            if _HASHER.check_needs_rehash(user.password_hash):
                user.password_hash = _HASHER.hash(password)
                session.commit()
            session.expunge(user)
        value = self._signer.sign(f"{user.id}:{secrets.token_urlsafe(12)}").decode()
        return user, value

    def staff(self, value: str | None) -> Staff:
        if not value:
            raise SignInRequired
        try:
            raw = self._signer.unsign(value, max_age=MAX_AGE).decode()
        except BadSignature:
            raise SignInRequired from None
        user_id = int(raw.split(":", 1)[0])
        with self.runtime.reads() as session:
            user = session.get(StaffUser, user_id)
        if user is None or user.disabled:
            raise SignInRequired
        csrf = hmac.new(self._csrf_key, value.encode(), hashlib.sha256).hexdigest()
        return Staff(id=user.id, email=user.email, role=user.role, csrf=csrf)

    def check_post(self, request: Request, staff: Staff, token: str | None) -> bool:
        """Whether a POST came from our own pages: same origin and the session's token."""
        headers = request.headers
        if not same_site(headers.get("origin"), headers.get("host"), self._origin):
            return False
        return token is not None and hmac.compare_digest(token, staff.csrf)


def get_sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.console_sessions
    return sessions


SessionsDep = Annotated[Sessions, Depends(get_sessions)]


def current_staff(request: Request, sessions: SessionsDep) -> Staff:
    return sessions.staff(request.cookies.get(COOKIE))


StaffDep = Annotated[Staff, Depends(current_staff)]
