"""Console sign-in: argon2id passwords, server-side sessions, CSRF tokens, roles.

The session cookie holds a random token, new at every sign-in; the `staff_sessions` row
behind it is read on every request, so sign-out, a password change and disabling a user end
the session at once (see hub.services.staff_sessions). Sessions last 12 hours. Cookies are
HttpOnly and SameSite=Strict; behind https they are Secure and `__Host-` prefixed, so no
sibling subdomain can plant one. Each form carries a token derived from the session (HMAC)
and a POST from another origin is refused. The sign-in form has no session yet, so a GET of
the sign-in page sets a pre-session cookie and the form carries its HMAC: a sign-in posted
by another site (login CSRF) has neither. Roles rank viewer < marketer < admin; every page
and action names the least role it needs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request, Response

from hub.db.models import StaffUser
from hub.domain import SessionRevoked, StaffRole
from hub.runtime import Runtime
from hub.services import staff_sessions
from hub.web.forms import origin_of, same_site
from hub.web.throttle import Throttle

MAX_AGE = 12 * 3600
FORM_MAX_AGE = 2 * 3600  # the pre-session cookie; an older sign-in page is shown again
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
    """No live session: the page sends the browser to the sign-in page."""


class NotAllowed(Exception):
    def __init__(self, role: StaffRole) -> None:
        super().__init__(f"this needs the {role.value} role")
        self.role = role


def _key(purpose: str, secret: str) -> bytes:
    return hashlib.sha256((purpose + secret).encode()).digest()


class Sessions:
    def __init__(self, runtime: Runtime) -> None:
        newest = runtime.settings.link_secrets()[0]
        self._csrf_key = _key("hub/console-csrf", newest)
        self._sign_in_key = _key("hub/console-sign-in", newest)
        self.secure = runtime.settings.public_url.startswith("https://")
        prefix = "__Host-" if self.secure else ""
        self.cookie = f"{prefix}hub_session"
        self.form_cookie = f"{prefix}hub_sign_in"
        self._origin = origin_of(runtime.settings.public_url)
        self.runtime = runtime
        # Per app rather than per module, so two apps in one process do not share a count.
        self.throttle = Throttle(10, 600)  # sign-in attempts per IP per 10 minutes

    # -- the session ---------------------------------------------------------------------

    def sign_in(
        self,
        email: str,
        password: str,
        *,
        ip: str | None,
        user_agent: str | None,
        replacing: str | None,
    ) -> str | None:
        """A new session's cookie value, or None (unknown, disabled or wrong password).
        `replacing`: the session cookie the browser still had, which ends here."""
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
            if replacing:
                staff_sessions.revoke(session, replacing, SessionRevoked.SIGNED_IN_AGAIN)
            token = staff_sessions.start(
                session,
                user.id,
                lifetime=dt.timedelta(seconds=MAX_AGE),
                ip=ip,
                user_agent=user_agent,
            )
            session.commit()
        return token

    def staff(self, value: str | None) -> Staff:
        if not value:
            raise SignInRequired
        with self.runtime.reads() as session:
            live = staff_sessions.find(session, value)
        if live is None:
            raise SignInRequired
        if dt.datetime.now(dt.UTC) - live.last_seen_at >= staff_sessions.TOUCH_EVERY:
            with self.runtime.sessions() as session:
                staff_sessions.touch(session, live)
                session.commit()
        csrf = hmac.new(self._csrf_key, value.encode(), hashlib.sha256).hexdigest()
        return Staff(id=live.user_id, email=live.email, role=live.role, csrf=csrf)

    def sign_out(self, value: str) -> None:
        with self.runtime.sessions() as session:
            staff_sessions.revoke(session, value, SessionRevoked.SIGNED_OUT)
            session.commit()

    def set_cookie(self, response: Response, value: str) -> None:
        self._set(response, self.cookie, value, MAX_AGE)

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="strict", secure=self.secure
        )

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(self.cookie, path="/", secure=self.secure, httponly=True)

    def check_post(self, request: Request, staff: Staff, token: str | None) -> bool:
        """Whether a POST came from our own pages: same origin and the session's token."""
        if not self._same_origin(request):
            return False
        return token is not None and hmac.compare_digest(token, staff.csrf)

    # -- the sign-in form, before there is a session ---------------------------------------

    def sign_in_form(self, request: Request) -> tuple[str, str]:
        """The pre-session value and the token a sign-in form carries. A value the browser
        already has is kept, so two open sign-in tabs both work."""
        nonce = request.cookies.get(self.form_cookie) or ""
        if not 20 <= len(nonce) <= staff_sessions.MAX_TOKEN:
            nonce = secrets.token_urlsafe(32)
        return nonce, self._sign_in_token(nonce)

    def set_form_cookie(self, response: Response, nonce: str) -> None:
        self._set(response, self.form_cookie, nonce, FORM_MAX_AGE)

    def check_sign_in(self, request: Request, token: str | None) -> bool:
        """Whether a sign-in POST came from our own sign-in page: same origin, and the
        token matches the pre-session cookie (which SameSite keeps off other sites' posts)."""
        if not self._same_origin(request):
            return False
        nonce = request.cookies.get(self.form_cookie)
        if not token or not nonce or len(nonce) > staff_sessions.MAX_TOKEN:
            return False
        return hmac.compare_digest(token, self._sign_in_token(nonce))

    def end_sign_in_form(self, response: Response) -> None:
        response.delete_cookie(self.form_cookie, path="/", secure=self.secure, httponly=True)

    def _sign_in_token(self, nonce: str) -> str:
        return hmac.new(self._sign_in_key, nonce.encode(), hashlib.sha256).hexdigest()

    def _same_origin(self, request: Request) -> bool:
        headers = request.headers
        return same_site(headers.get("origin"), headers.get("host"), self._origin)


def get_sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.console_sessions
    return sessions


SessionsDep = Annotated[Sessions, Depends(get_sessions)]


def current_staff(request: Request, sessions: SessionsDep) -> Staff:
    return sessions.staff(request.cookies.get(sessions.cookie))


StaffDep = Annotated[Staff, Depends(current_staff)]
