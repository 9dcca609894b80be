"""A scheduled notification in headless Chromium: a marketer finds it with the list's state
filter, reads when it goes, cancels it after a confirmation page, and the person's timeline
says so; a viewer is offered no Cancel. Every page passes axe and fits 390 px; screenshots
at 1280 and 390 px go to tests/e2e/screenshots/."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from hub.db.base import utcnow
from hub.domain import StaffRole
from hub.services import staff
from tests.dispatching import ok, person, topic
from tests.e2e.browser import (  # noqa: F401 - `browser` is a fixture
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    browser,
    serious_violations,
    wider,
)
from tests.e2e.live import LiveHub, live_hub

PASSWORD = "correct horse battery staple"
MIA, VIC = "mia@acme.example", "vic@acme.example"
CONTENT = {"": {"email_subject": "Your invoice", "email_text": "It is ready."}}


@pytest.fixture
def scheduled(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[LiveHub, int]]:
    """A hub with Ada, and a notification to her scheduled for tomorrow: its id."""
    with live_hub(sqlite_template, tmp_path) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, MIA, PASSWORD, StaffRole.MARKETER)
            staff.create(session, VIC, PASSWORD, StaffRole.VIEWER)
            session.commit()
        topic(hub.api, hub.auth, "invoices", name="Invoices")
        person(hub.api, hub.auth, "ada", name="Ada Lovelace", email="ada@example.com")
        body = {
            "topic": "invoices",
            "content": CONTENT,
            "recipients": ["ada"],
            "send_at": (utcnow() + dt.timedelta(days=1)).isoformat(),
        }
        accepted = ok(hub.api.post("/v1/notifications", json=body, headers=hub.auth), 202)
        yield hub, accepted["id"]


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def checked(page: Page, phone: Page, name: str) -> None:
    """No serious axe finding; the same address fits 390 px; screenshots at both widths."""
    assert serious_violations(page) == [], name
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"console-scheduled-{name}-desktop.png", full_page=True)
    phone.goto(page.url)
    phone.screenshot(path=SCREENSHOTS / f"console-scheduled-{name}-phone.png", full_page=True)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{name} is {width} px wide at 390 px: {wider(phone)}"


def test_a_marketer_finds_a_scheduled_notification_and_cancels_it(
    scheduled: tuple[LiveHub, int],
    browser: Browser,  # noqa: F811
) -> None:
    hub, notification_id = scheduled
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    phone = context.new_page()
    phone.set_viewport_size(PHONE)
    sign_in(page, hub.base, MIA)

    page.goto(f"{hub.base}/console/notifications")
    page.select_option("#state", "scheduled")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert "state=scheduled" in page.url
    row = page.locator("table.notification-list tbody tr").first
    assert row.locator("a").inner_text() == f"#{notification_id}"
    assert "scheduled for" in row.inner_text()
    checked(page, phone, "list")

    with page.expect_navigation():
        row.locator("a").click()
    facts = page.locator("dl.facts").inner_text()
    assert "Scheduled for" in facts
    assert "waits for its scheduled time" in facts
    checked(page, phone, "notification")

    with page.expect_navigation():
        page.click("text=Cancel this notification")
    assert "nothing of it is sent" in page.locator("main").inner_text()
    checked(page, phone, "confirm")
    with page.expect_navigation():
        page.click(f"button:has-text('Cancel notification #{notification_id}')")
    assert "Cancelled: nothing of it will be sent." in page.locator("[role=status]").inner_text()
    facts = page.locator("dl.facts").inner_text()
    assert "none: it was cancelled" in facts
    assert page.locator("text=Cancel this notification").count() == 0
    checked(page, phone, "cancelled")

    read = ok(hub.api.get(f"/v1/notifications/{notification_id}", headers=hub.auth))
    assert (read["state"], read["counts"]) == ("cancelled", {})
    page.goto(f"{hub.base}/console/contacts/ada")
    said = page.locator("main").inner_text()
    assert f"Notification #{notification_id} (Invoices) cancelled by {MIA} in the console" in said
    context.close()


def test_a_viewer_reads_the_schedule_but_is_offered_no_cancel(
    scheduled: tuple[LiveHub, int],
    browser: Browser,  # noqa: F811
) -> None:
    hub, notification_id = scheduled
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, hub.base, VIC)
    page.goto(f"{hub.base}/console/notifications/{notification_id}")
    assert "Scheduled for" in page.locator("dl.facts").inner_text()
    assert page.locator("text=Cancel this notification").count() == 0
    answer = page.goto(f"{hub.base}/console/notifications/{notification_id}/cancel")
    assert answer is not None
    assert answer.status == 403
    read = ok(hub.api.get(f"/v1/notifications/{notification_id}", headers=hub.auth))
    assert read["state"] == "scheduled"
    context.close()
