"""Console sessions: the sign-in form is protected like every other form (origin and a
pre-session token), every sign-in issues a new session id, and sign-out, a password change
and disabling a user end sessions at once. Old cookies are replayed explicitly, from a
browser that has nothing else, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.db.models import StaffSession
from hub.domain import SessionRevoked, StaffRole
from hub.runtime import Runtime
from hub.services import staff
from hub.settings import Settings
from tests.conftest import TEST_SECRET

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a different, longer passphrase"
EMAIL = "mia@acme.example"
SESSION = "hub_session"  # over http; `__Host-hub_session` behind https


def add_staff(runtime: Runtime, email: str = EMAIL) -> None:
    with runtime.sessions() as session:
        staff.create(session, email, PASSWORD, StaffRole.MARKETER)
        session.commit()


def form_token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no form token on the page"
    return found.group(1)


def sign_in(client: TestClient, email: str = EMAIL, password: str = PASSWORD) -> str:
    """Sign in as a browser does (open the page, post its form); the session cookie's value."""
    page = client.get("/console/login")
    assert page.status_code == 200
    answer = client.post(
        "/console/login",
        data={"csrf": form_token(page.text), "email": email, "password": password},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    value = client.cookies.get(SESSION)
    assert value
    return value


def opens_console(client: TestClient, cookie: str) -> bool:
    """Replay a session cookie from a fresh browser: does it open the dashboard?"""
    stranger = TestClient(client.app, raise_server_exceptions=False)
    stranger.cookies.set(SESSION, cookie)
    answer = stranger.get("/console", follow_redirects=False)
    if answer.status_code == 200:
        return True
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("/console/login")
    return False


def session_rows(runtime: Runtime) -> list[StaffSession]:
    with runtime.reads() as session:
        return list(session.scalars(select(StaffSession).order_by(StaffSession.id)))


def test_a_sign_in_posted_from_another_site_gets_no_session(
    client: TestClient, runtime: Runtime
) -> None:
    add_staff(runtime)
    page = client.get("/console/login")
    body = {"csrf": form_token(page.text), "email": EMAIL, "password": PASSWORD}
    forged = client.post(
        "/console/login",
        data=body,
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert SESSION not in forged.cookies
    assert SESSION not in client.cookies
    assert session_rows(runtime) == []
    # The same form from our own origin works: only the origin was wrong.
    ours = client.post(
        "/console/login", data=body, headers={"origin": "http://testserver"}, follow_redirects=False
    )
    assert ours.status_code == 303


def test_a_sign_in_without_the_pre_session_token_is_refused(
    client: TestClient, runtime: Runtime
) -> None:
    add_staff(runtime)
    credentials = {"email": EMAIL, "password": PASSWORD}
    # Never opened the sign-in page: no cookie, no token (what a cross-site form sends).
    bare = client.post("/console/login", data=credentials, follow_redirects=False)
    assert bare.status_code == 403
    assert "expired or came from another site" in bare.text
    # The page's cookie, but no token, or a token from another browser's page.
    mine = form_token(client.get("/console/login").text)
    other = TestClient(client.app, raise_server_exceptions=False)
    theirs = form_token(other.get("/console/login").text)
    assert theirs != mine
    for token in ("", "forged", theirs):
        answer = client.post(
            "/console/login", data=credentials | {"csrf": token}, follow_redirects=False
        )
        assert answer.status_code == 403, token
    # The token without the cookie it belongs to.
    cookieless = TestClient(client.app, raise_server_exceptions=False)
    answer = cookieless.post(
        "/console/login", data=credentials | {"csrf": mine}, follow_redirects=False
    )
    assert answer.status_code == 403
    assert SESSION not in client.cookies
    assert session_rows(runtime) == []
    # A refused or wrong attempt shows the form again, and its token works.
    wrong = client.post(
        "/console/login",
        data={"csrf": mine, "email": EMAIL, "password": "not the password"},
        follow_redirects=False,
    )
    assert wrong.status_code == 401
    retried = client.post(
        "/console/login",
        data=credentials | {"csrf": form_token(wrong.text)},
        follow_redirects=False,
    )
    assert retried.status_code == 303


def test_each_sign_in_issues_a_new_session_id(client: TestClient, runtime: Runtime) -> None:
    add_staff(runtime)
    client.cookies.set(SESSION, "planted-by-someone-else-0123456789", domain="testserver.local")
    first = sign_in(client)
    second = sign_in(client)
    assert len({first, second, "planted-by-someone-else-0123456789"}) == 3
    assert opens_console(client, second)
    # Signing in again in the same browser ends the session it had.
    assert not opens_console(client, first)
    rows = session_rows(runtime)
    assert [r.revoked_reason for r in rows] == [SessionRevoked.SIGNED_IN_AGAIN, None]
    # The database keeps a hash, never the cookie's value.
    assert rows[1].token_hash == hashlib.sha256(second.encode()).hexdigest()
    assert all(second not in (r.token_hash, r.ip, r.user_agent) for r in rows)


def test_session_cookies_are_http_only_and_strict(client: TestClient, runtime: Runtime) -> None:
    add_staff(runtime)
    page = client.get("/console/login")
    pre = page.headers["set-cookie"].lower()
    assert "hub_sign_in=" in pre
    assert "httponly" in pre
    assert "samesite=strict" in pre
    signed = client.post(
        "/console/login",
        data={"csrf": form_token(page.text), "email": EMAIL, "password": PASSWORD},
        follow_redirects=False,
    )
    cookies = [c.lower() for c in signed.headers.get_list("set-cookie")]
    session = next(c for c in cookies if c.startswith(f"{SESSION}="))
    assert "httponly" in session
    assert "samesite=strict" in session
    assert "max-age=43200" in session
    # The pre-session cookie has done its job.
    assert any(c.startswith("hub_sign_in=") and "max-age=0" in c for c in cookies)


def test_after_sign_out_the_old_cookie_is_dead(client: TestClient, runtime: Runtime) -> None:
    add_staff(runtime)
    old = sign_in(client)
    elsewhere = TestClient(client.app, raise_server_exceptions=False)
    other_browser = sign_in(elsewhere)
    dashboard = client.get("/console")
    assert dashboard.status_code == 200
    out = client.post(
        "/console/logout", data={"csrf": form_token(dashboard.text)}, follow_redirects=False
    )
    assert out.status_code == 303
    assert out.headers["location"].endswith("/console/login")
    assert not opens_console(client, old)  # replayed: a copy kept by anyone is dead too
    assert opens_console(client, other_browser)  # sign-out ends this browser's session only
    ended = session_rows(runtime)[0]
    assert ended.revoked_reason == SessionRevoked.SIGNED_OUT
    assert ended.revoked_at is not None


def test_a_password_change_ends_every_session(client: TestClient, runtime: Runtime) -> None:
    add_staff(runtime)
    add_staff(runtime, "vic@acme.example")
    laptop = sign_in(client)
    phone = sign_in(TestClient(client.app, raise_server_exceptions=False))
    colleague = sign_in(TestClient(client.app, raise_server_exceptions=False), "vic@acme.example")
    assert opens_console(client, laptop)
    with runtime.sessions() as session:
        assert staff.set_password(session, EMAIL, NEW_PASSWORD) == 2
        session.commit()
    assert not opens_console(client, laptop)
    assert not opens_console(client, phone)
    assert opens_console(client, colleague)  # another user's sessions are untouched
    fresh = TestClient(client.app, raise_server_exceptions=False)
    assert opens_console(client, sign_in(fresh, password=NEW_PASSWORD))


def test_disabling_a_user_ends_their_sessions_for_good(
    client: TestClient, runtime: Runtime
) -> None:
    add_staff(runtime)
    old = sign_in(client)
    with runtime.sessions() as session:
        assert staff.set_disabled(session, EMAIL, True) == 1
        session.commit()
    assert not opens_console(client, old)
    page = client.get("/console/login")
    refused = client.post(
        "/console/login",
        data={"csrf": form_token(page.text), "email": EMAIL, "password": PASSWORD},
        follow_redirects=False,
    )
    assert refused.status_code == 401
    with runtime.sessions() as session:
        assert staff.set_disabled(session, EMAIL, False) == 0
        session.commit()
    assert not opens_console(client, old)  # enabling again revives no session
    assert opens_console(client, sign_in(client))


def test_an_expired_session_is_refused_whatever_the_cookie_says(
    client: TestClient, runtime: Runtime
) -> None:
    add_staff(runtime)
    value = sign_in(client)
    with runtime.sessions() as session:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        session.execute(update(StaffSession).values(expires_at=past))
        session.commit()
    assert not opens_console(client, value)


def test_the_cli_changes_a_password_and_signs_a_user_out_everywhere(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    add_staff(runtime)
    env = {"HUB_DATABASE_URL": settings.database_url, "HUB_SECRET_KEY": TEST_SECRET}
    runner = CliRunner()
    first = sign_in(client)
    changed = runner.invoke(
        cli, ["user", "password", EMAIL, "--password-stdin"], input=f"{NEW_PASSWORD}\n", env=env
    )
    assert changed.exit_code == 0, changed.output
    assert "1 session ended" in changed.output
    assert not opens_console(client, first)
    second = sign_in(client, password=NEW_PASSWORD)
    everywhere = runner.invoke(cli, ["user", "sign-out", EMAIL], env=env)
    assert everywhere.exit_code == 0, everywhere.output
    assert not opens_console(client, second)
    disabled = runner.invoke(cli, ["user", "disable", EMAIL], env=env)
    assert disabled.exit_code == 0, disabled.output
    unknown = runner.invoke(cli, ["user", "disable", "who@acme.example"], env=env)
    assert unknown.exit_code == 1
    assert "no staff user" in unknown.output
