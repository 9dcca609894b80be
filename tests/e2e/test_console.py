"""The staff console in headless Chromium: a marketer writes a template, creates a campaign
for a segment, dry-runs it, schedules it a few seconds ahead and watches it finish; the
message is found at the SMTP peer and on a recipient's timeline. A viewer cannot schedule.
Screenshots of the main pages go to tests/e2e/screenshots/."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from hub.domain import StaffRole
from hub.services import staff
from tests.dispatching import ok, person, timeline, topic
from tests.e2e.browser import DESKTOP, PHONE, SCREENSHOTS, browser  # noqa: F401 - a fixture
from tests.e2e.live import LiveHub, live_hub

PASSWORD = "correct horse battery staple"


@pytest.fixture
def console(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(sqlite_template, tmp_path) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, "mia@acme.example", PASSWORD, StaffRole.MARKETER)
            staff.create(session, "vic@acme.example", PASSWORD, StaffRole.VIEWER)
            session.commit()
        topic(hub.api, hub.auth, "news", name="Product news", allowed_channels=["email"])
        for i, plan in enumerate(["pro", "free", "pro"]):
            person(
                hub.api,
                hub.auth,
                f"c{i}",
                name=f"Client {i}",
                email=f"c{i}@example.com",
                attributes={"plan": plan},
                subscribe={"news": ["email"]},
            )
        yield hub


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/console")
    assert page.url.endswith("/console/login")  # sent to sign in first
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith("/console")


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"console-{name}.png", full_page=True)


def test_a_marketer_writes_schedules_and_watches_a_campaign(
    console: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, console.base, "mia@acme.example")
    shoot(page, "dashboard")

    page.goto(f"{console.base}/console/templates")
    page.fill("#new-key", "winter")
    with page.expect_navigation():
        page.click("text=Write it")
    page.fill("#email_subject", "Winter offer for {{ contact.name }}")
    page.fill("#email_text", "Dear {{ contact.name }}, {{ data.offer }} this week.")
    page.fill("#contact", "c0")
    page.fill("#pdata", '{"offer": "20% off"}')
    with page.expect_navigation():
        page.click("button[value=preview]")
    assert "Winter offer for Client 0" in page.inner_text(".preview")
    assert "Dear Client 0, 20% off this week." in page.inner_text(".preview")
    shoot(page, "template-editor")
    with page.expect_navigation():
        page.click("button[value=save]")
    page.fill("#add-locale", "ru")
    with page.expect_navigation():
        page.click("text=Edit it")
    page.fill("#email_subject", "Зимнее предложение для {{ contact.name }}")
    page.fill("#email_text", "{{ contact.name }}, {{ data.offer }} на этой неделе.")
    with page.expect_navigation():
        page.click("button[value=save]")
    saved = ok(console.api.get("/v1/templates/winter", headers=console.auth))
    assert set(saved["variants"]) == {"", "ru"}
    assert saved["variants"][""]["email_subject"] == "Winter offer for {{ contact.name }}"

    page.goto(f"{console.base}/console/campaigns/new")
    page.fill("#name", "Winter for pro clients")
    page.select_option("#topic", "news")
    page.select_option("#template", "winter")
    page.fill("#data", '{"offer": "20% off"}')
    page.fill("#seg-attrs", "plan=pro")
    with page.expect_navigation():
        page.click("text=Count the audience")
    assert page.inner_text("[role=status]") == "The audience now: 2 people."
    page.select_option("#when", "at")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=6)
    page.fill("#at", soon.strftime("%Y-%m-%dT%H:%M:%S"))
    shoot(page, "campaign-new")
    with page.expect_navigation():
        page.click("text=Create draft")
    assert page.inner_text(".state") == "draft"
    assert "2 people" in page.inner_text(".facts")

    with page.expect_navigation():
        page.click("button:has-text('Send a test to me')")
    assert "accepted by the mail server (sent)" in page.inner_text("#test")
    assert "The message Client 0 (c0) would get, sent to mia@acme.example" in page.inner_text(
        "#test"
    )
    (test,) = console.smtp.wait_for(1)
    assert test.rcpt_tos == ("mia@acme.example",)
    assert test.message["Subject"] == "Winter offer for Client 0"  # the first of the audience
    console.smtp.clear()
    with page.expect_navigation():
        page.click("button:has-text('Dry-run')")
    dry = page.inner_text("table")
    assert "send by email" in dry
    assert "c0, c2" in dry
    with page.expect_navigation():
        page.click("button:has-text('Schedule')")
    assert page.inner_text(".state") == "scheduled"
    assert console.smtp.received == []  # not before its time
    page.wait_for_selector(".state-done", timeout=45_000)  # the page refreshes itself
    shoot(page, "campaign-done")
    assert page.inner_text(".count-sent") == "2"

    received = {m.rcpt_tos[0]: m.message for m in console.smtp.wait_for(2)}
    assert set(received) == {"c0@example.com", "c2@example.com"}
    assert received["c2@example.com"]["Subject"] == "Winter offer for Client 2"
    sent = [e for e in timeline(console.api, console.auth, "c2") if e["type"] == "delivery.sent"]
    assert len(sent) == 1

    page.goto(f"{console.base}/console/contacts?q=c2@example.com")
    with page.expect_navigation():
        page.click("text=c2")
    assert "delivery.sent" in page.inner_text(".timeline")
    page.select_option("#why", "news")
    with page.expect_navigation():
        page.click("text=Explain now")
    rules = page.inner_text("table.explain")
    assert "consent" in rules
    assert "subscription subscribed" in rules
    shoot(page, "contact")
    page.goto(f"{console.base}/console")
    assert "Winter for pro clients" in page.inner_text("main")
    shoot(page, "dashboard-after")
    page.close()


def test_a_viewer_sees_but_cannot_schedule(console: LiveHub, browser: Browser) -> None:  # noqa: F811
    draft = ok(
        console.api.post(
            "/v1/campaigns",
            json={"name": "Draft", "topic": "news", "template": "t"},
            headers=console.auth,
        ),
        201,
        422,
    )
    ok(
        console.api.put(
            "/v1/templates/t",
            json={"variants": {"": {"email_subject": "s", "email_text": "t"}}},
            headers=console.auth,
        )
    )
    draft = ok(
        console.api.post(
            "/v1/campaigns",
            json={"name": "Draft", "topic": "news", "template": "t"},
            headers=console.auth,
        ),
        201,
    )
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, console.base, "vic@acme.example")
    page.goto(f"{console.base}/console/campaigns/{draft['id']}")
    assert page.inner_text(".state") == "draft"
    assert page.locator("button:has-text('Schedule')").count() == 0
    assert page.locator("button:has-text('Send a test to me')").count() == 0
    csrf = page.get_attribute("input[name=csrf]", "value")
    answer = page.request.post(
        f"{console.base}/console/campaigns/{draft['id']}/schedule", form={"csrf": csrf or ""}
    )
    assert answer.status == 403
    assert page.goto(f"{console.base}/console/campaigns/new").status == 403  # type: ignore[union-attr]
    got = ok(console.api.get(f"/v1/campaigns/{draft['id']}", headers=console.auth))
    assert got["state"] == "draft"
    # Nor preview a template (issue 15.4): a preview runs staff code on any contact's data.
    page.goto(f"{console.base}/console/templates/edit?key=t")
    assert page.locator("button:has-text('Preview')").count() == 0
    preview = page.request.post(
        f"{console.base}/console/templates/edit?key=t",
        form={"csrf": csrf or "", "action": "preview", "email_subject": "s", "data": "{}"},
    )
    assert preview.status == 403
    # Without a session, every console page sends the browser to the sign-in page.
    anonymous = httpx.get(f"{console.base}/console/campaigns", follow_redirects=False)
    assert anonymous.status_code == 303
    assert re.search(r"/console/login$", anonymous.headers["location"])
    page.close()


def form_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def test_sign_in_refuses_wrong_passwords_and_foreign_forms(console: LiveHub) -> None:
    with httpx.Client(base_url=console.base) as visitor:
        csrf = form_token(visitor.get("/console/login"))
        wrong = visitor.post(
            "/console/login",
            data={"csrf": csrf, "email": "mia@acme.example", "password": "nope"},
        )
        assert wrong.status_code == 401
        unknown = visitor.post(
            "/console/login",
            data={"csrf": csrf, "email": "who@acme.example", "password": "x"},
        )
        assert unknown.status_code == 401
        assert "Wrong e-mail or password." in unknown.text
    # A sign-in posted by another site (login CSRF) has neither our origin nor the token.
    forged = httpx.post(
        f"{console.base}/console/login",
        data={"email": "mia@acme.example", "password": PASSWORD},
        headers={"origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    assert "set-cookie" not in forged.headers or "hub_session" not in forged.headers["set-cookie"]
    with httpx.Client(base_url=console.base) as client:
        signed = client.post(
            "/console/login",
            data={
                "csrf": form_token(client.get("/console/login")),
                "email": "mia@acme.example",
                "password": PASSWORD,
            },
        )
        assert signed.status_code == 303
        cookie = next(c for c in signed.headers.get_list("set-cookie") if "hub_session=" in c)
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        form = client.get("/console/campaigns/new")
        assert form.status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf
        body = {"csrf": csrf.group(1), "name": "x", "topic": "news", "template": "none"}
        evil = client.post(
            "/console/campaigns/new", data=body, headers={"origin": "https://evil.example"}
        )
        assert evil.status_code == 403
        no_token = client.post("/console/campaigns/new", data=body | {"csrf": "forged"})
        assert no_token.status_code == 403
        named = client.post("/console/campaigns/new", data=body)
        assert named.status_code == 422
        assert "template" in named.text
        # Signing out ends the session on the server: a copy of the cookie opens nothing.
        session = client.cookies["hub_session"]
        out = client.post("/console/logout", data={"csrf": csrf.group(1)})
        assert out.status_code == 303
    replayed = httpx.get(f"{console.base}/console", headers={"cookie": f"hub_session={session}"})
    assert replayed.status_code == 303
    assert replayed.headers["location"].endswith("/console/login")


def test_a_preview_with_data_nested_too_deep_is_a_422(
    console: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    """Issue 15.6: 50,000 nested arrays in the data box answered 500 (the JSON parser recursed)."""
    ok(
        console.api.put(
            "/v1/templates/t",
            json={"variants": {"": {"email_subject": "s", "email_text": "t"}}},
            headers=console.auth,
        )
    )
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, console.base, "mia@acme.example")
    page.goto(f"{console.base}/console/templates/edit?key=t")
    page.fill("#pdata", "[" * 50_000 + "]" * 50_000)
    with page.expect_navigation() as navigation:
        page.click("button:has-text('Preview')")
    assert navigation.value is not None
    assert navigation.value.status == 422
    assert "nested too deeply" in page.inner_text("main")
    page.fill("#pdata", '{"deep": ' + "[" * 20 + "]" * 20 + "}")
    with page.expect_navigation() as navigation:
        page.click("button:has-text('Preview')")
    assert navigation.value is not None
    assert navigation.value.status == 422  # parsed, then refused by the data's depth limit
    assert "nest" in page.inner_text("main")
    page.close()


STRAY_DSN = """\
From: MAILER-DAEMON@mx.example.net
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; nobody@example.org
Action: failed
Status: 5.1.1

--B
Content-Type: text/rfc822-headers

Message-ID: <hub-1-1-staginabcdefgh23@example.com>

--B--
"""


def test_staff_see_the_bounces_that_matched_nothing(
    console: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    """Issue 15.11: a report about no delivery of ours suppresses nobody, and staff can read it."""
    answer = console.api.post(
        "/inbound/email/bounce",
        content=STRAY_DSN.replace("\n", "\r\n").encode(),
        headers=console.auth | {"content-type": "message/rfc822"},
    )
    assert ok(answer, 202)["matched"] is False
    page = browser.new_page(viewport=PHONE)
    sign_in(page, console.base, "vic@acme.example")
    page.click("nav >> text=Unmatched bounces")
    row = page.locator("tbody tr").first
    assert "nobody@example.org" in row.inner_text()
    assert "hub-1-1-staginabcdefgh23" in row.inner_text()
    assert "no e-mail delivery here is hub-1-1" in row.inner_text()
    shoot(page, "unmatched-bounces-phone")
    page.close()
