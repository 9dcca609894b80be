"""Administration in the console, in headless Chromium: an admin adds a marketer, creates an
API key (its secret shown once: a reload does not show it again), revokes it, adds an event
endpoint and disables the marketer, whose open session ends at once. The marketer sees no
Admin link and gets 403 on every administration page. The audit log lists all of it, with
no secret in it. Screenshots at desktop and phone width go to tests/e2e/screenshots/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from hub.domain import StaffRole
from hub.services import staff
from tests.e2e.browser import DESKTOP, PHONE, SCREENSHOTS, browser  # noqa: F401 - a fixture
from tests.e2e.live import LiveHub, live_hub

PASSWORD = "correct horse battery staple"
ADMIN = "ada@acme.example"
MARKETER = "mia@acme.example"


@pytest.fixture
def console(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(sqlite_template, tmp_path) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, ADMIN, PASSWORD, StaffRole.ADMIN)
            session.commit()
        yield hub


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith("/console"), page.url


def shoot(page: Page, name: str) -> None:
    """A full-page screenshot, and at phone width the page must not scroll sideways."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"console-admin-{name}.png", full_page=True)
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"{name}: the page scrolls {wide}px sideways"


def summary_links(page: Page) -> list[tuple[str, str]]:
    return [
        (a.get_attribute("href") or "", a.inner_text())
        for a in page.locator(".error-summary a").all()
    ]


def api_status(base: str, secret: str) -> int:
    answer = httpx.get(f"{base}/v1/topics", headers={"Authorization": f"Bearer {secret}"})
    return answer.status_code


def test_an_admin_manages_staff_keys_and_endpoints_and_reads_the_audit_log(
    console: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    base = console.base
    admin = browser.new_context(viewport=DESKTOP).new_page()
    sign_in(admin, base, ADMIN)
    with admin.expect_navigation():
        admin.click("nav[aria-label=Console] >> text=Admin")
    shoot(admin, "home")

    # A staff user: the empty form is refused with a summary linking to each field.
    with admin.expect_navigation():
        admin.click("text=Staff users")
    with admin.expect_navigation():
        admin.click("text=Add a staff user")
    admin.click("#password-set")
    with admin.expect_navigation() as refused:
        admin.click("button:has-text('Add staff user')")
    assert refused.value is not None
    assert refused.value.status == 422
    assert summary_links(admin) == [
        ("#email", "Enter their e-mail address"),
        ("#role-viewer", "Choose a role"),
        ("#password", "Enter a password of at least 12 characters"),
    ]
    assert admin.get_attribute("#email", "aria-invalid") == "true"
    assert "email-error" in (admin.get_attribute("#email", "aria-describedby") or "")
    admin.click(".error-summary >> text=Enter their e-mail address")
    assert admin.evaluate("document.activeElement.id") == "email"
    shoot(admin, "user-new-errors")
    admin.fill("#email", MARKETER)
    admin.check("#role-marketer")
    admin.check("#password-set")
    admin.fill("#password", PASSWORD)
    with admin.expect_navigation():
        admin.click("button:has-text('Add staff user')")
    assert "Staff user added" in admin.inner_text("[role=status]")
    assert "marketer" in admin.inner_text(".facts")

    # The marketer signs in elsewhere: no Admin link, and 403 on every administration page.
    marketer = browser.new_context(viewport=PHONE).new_page()
    sign_in(marketer, base, MARKETER)
    assert marketer.locator("nav[aria-label=Console] >> text=Admin").count() == 0
    for path in ("", "/users", "/users/1", "/keys", "/keys/new", "/endpoints", "/audit"):
        answer = marketer.goto(f"{base}/console/admin{path}")
        assert answer is not None
        assert answer.status == 403, path
    assert "it needs admin" in marketer.inner_text("main")
    marketer.goto(f"{base}/console")
    csrf = marketer.get_attribute("input[name=csrf]", "value") or ""
    forged = marketer.request.post(
        f"{base}/console/admin/keys/new", form={"csrf": csrf, "name": "mine", "scope": "admin"}
    )
    assert forged.status == 403
    marketer.goto(f"{base}/console/admin/users")
    shoot(marketer, "forbidden-phone")

    # An API key: the secret is on the next page once; a reload does not show it again.
    admin.goto(f"{base}/console/admin/keys")
    with admin.expect_navigation():
        admin.click("text=Create an API key")
    admin.fill("#name", "billing-service")
    admin.check("#scope-notify")
    admin.check("#scope-contacts")
    shoot(admin, "key-new")
    with admin.expect_navigation():
        admin.click("button:has-text('Create key')")
    secret = admin.inner_text("#secret").strip()
    assert secret.startswith("hub_")
    assert api_status(base, secret) == 200
    shoot(admin, "key-secret-once")
    admin.reload()
    assert admin.locator("#secret").count() == 0
    assert "shown once and cannot be shown again" in admin.inner_text("main")
    assert secret not in admin.content()
    admin.goto(f"{base}/console/admin/keys")
    assert secret not in admin.content()
    row = admin.locator("tr", has_text="billing-service")
    assert "contacts, notify" in row.inner_text()
    assert "active" in row.inner_text()

    # Revoked after a page that says it cannot be undone; the API refuses it within seconds.
    with admin.expect_navigation():
        row.locator("text=Revoke").click()
    assert "cannot be undone" in admin.inner_text("main")
    with admin.expect_navigation():
        admin.click("button:has-text('Revoke billing-service')")
    assert "The key billing-service is revoked" in admin.inner_text("[role=status]")
    assert "active" not in admin.locator("tr", has_text="billing-service").inner_text()
    deadline = time.monotonic() + 15  # known keys are remembered for 5 seconds
    while api_status(base, secret) != 401:
        assert time.monotonic() < deadline, "the revoked key still opens the API"
        time.sleep(0.5)

    # An event endpoint: its signing secret shown once, then disabled by hand.
    admin.goto(f"{base}/console/admin/endpoints/new")
    admin.fill("#url", "https://crm.example.com/hub-events")
    admin.fill("#description", "CRM")
    admin.check("#event-delivery\\.sent")
    admin.check("#event-subscription\\.changed")
    with admin.expect_navigation():
        admin.click("button:has-text('Add endpoint')")
    signing = admin.inner_text("#secret").strip()
    assert signing.startswith("whsec_")
    with admin.expect_navigation():
        admin.click("text=Go to endpoint")
    assert "delivery.sent, subscription.changed" in admin.inner_text(".facts")
    with admin.expect_navigation():
        admin.click("button:has-text('Disable')")
    assert "disabled" in admin.inner_text(".facts")
    shoot(admin, "endpoint")

    # Disabling the marketer ends the session they have open.
    marketer.goto(f"{base}/console")
    assert marketer.url.endswith("/console")
    admin.goto(f"{base}/console/admin/users")
    with admin.expect_navigation():
        admin.click(f"text={MARKETER}")
    shoot(admin, "user")
    with admin.expect_navigation():
        admin.click(f"button:has-text('Disable {MARKETER}')")
    assert "1 open session(s) ended" in admin.inner_text("[role=status]")
    marketer.goto(f"{base}/console")
    assert marketer.url.endswith("/console/login")

    # The audit log lists every change, newest first, with who did it and no secret.
    admin.goto(f"{base}/console/admin/audit")
    headings = [h.inner_text() for h in admin.locator(".entry h2").all()]
    assert headings[:7] == [
        f"disabled Staff user {MARKETER}",
        "disabled Event endpoint 1",
        "created Event endpoint 1",
        "revoked API key billing-service",
        "created API key billing-service",
        f"created Staff user {MARKETER}",
        f"created Staff user {ADMIN}",  # the fixture's set-up
    ]
    metas = [m.inner_text() for m in admin.locator(".entry .meta").all()]
    assert all(f"by {ADMIN} (staff)" in m for m in metas[:6])
    assert "by system (Hub)" in metas[6]
    changed = admin.locator(".entry").first.locator("tr.changed")
    assert changed.count() == 2  # disabled, and the sessions it ended
    assert "disabled" in changed.first.inner_text()
    page_text = admin.content()
    for never in (secret, signing, PASSWORD, "argon2", "password_hash", "token_hash"):
        assert never not in page_text
    shoot(admin, "audit")
    admin.select_option("#resource", "api_key")
    with admin.expect_navigation():
        admin.click("button:has-text('Show entries')")
    headings = [h.inner_text() for h in admin.locator(".entry h2").all()]
    assert headings == [
        "revoked API key billing-service",
        "created API key billing-service",
        "created API key crm",  # the live hub's own, made by set-up code
    ]

    phone = browser.new_context(viewport=PHONE).new_page()
    sign_in(phone, base, ADMIN)
    for name, path in (
        ("audit-phone", "/console/admin/audit"),
        ("users-phone", "/console/admin/users"),
        ("user-phone", "/console/admin/users/2"),
        ("keys-phone", "/console/admin/keys"),
        ("key-new-phone", "/console/admin/keys/new"),
        ("endpoints-phone", "/console/admin/endpoints"),
        ("endpoint-phone", "/console/admin/endpoints/1"),
        ("endpoint-edit-phone", "/console/admin/endpoints/1/edit"),
    ):
        phone.goto(f"{base}{path}")
        shoot(phone, name)
    for context_page in (admin, marketer, phone):
        context_page.context.close()
