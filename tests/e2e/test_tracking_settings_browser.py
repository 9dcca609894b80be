"""Tracking in the console, in headless Chromium: a marketer makes a transactional topic
without touching the tracking box (it follows the category: off), then ticks both boxes on
its edit page; a person's own choice shows on their contact page. Screenshots at 1280 and
390 px go to tests/e2e/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from hub.domain import StaffRole
from hub.services import staff
from tests.dispatching import ok, person
from tests.e2e.browser import (  # noqa: F401 - browser is a fixture
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    browser,
    serious_violations,
    wider,
)
from tests.e2e.live import LiveHub, live_hub

PASSWORD = "correct horse battery staple"


@pytest.fixture
def console(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(sqlite_template, tmp_path) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, "mia@acme.example", PASSWORD, StaffRole.MARKETER)
            session.commit()
        yield hub


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#email", "mia@acme.example")
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith("/console")


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"console-tracking-{name}.png", full_page=True)


def submit(page: Page) -> None:
    with page.expect_navigation() as navigation:
        page.click(".topic-editor form button[type=submit]")
    answer = navigation.value
    assert answer is not None
    assert answer.status == 200  # after the redirect


def fits(page: Page) -> None:
    """No sideways scroll of the page itself (a table may scroll inside its own region)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide: {wider(page)}"


def test_a_marketer_sets_a_topics_tracking(console: LiveHub, browser: Browser) -> None:  # noqa: F811
    page = browser.new_page(viewport=DESKTOP)
    page.set_default_timeout(20_000)
    sign_in(page, console.base)
    page.goto(f"{console.base}/console/topics/new")
    box = page.get_by_label("Track opens and clicks of its e-mail")
    assert box.is_checked()  # a new topic is marketing until told otherwise
    assert not page.get_by_label("Rewrite links in its SMS too").is_checked()
    page.fill("#key", "receipts")
    page.fill("#name", "Receipts")
    page.check("#category-transactional")
    submit(page)
    assert page.url.endswith("/console/topics/receipts/edit?saved=created")
    receipts = ok(console.api.get("/v1/topics/receipts", headers=console.auth))
    assert (receipts["category"], receipts["tracking"]) == ("transactional", False)
    assert not box.is_checked()  # the edit page shows what was saved

    box.check()
    page.get_by_label("Rewrite links in its SMS too").check()
    submit(page)
    receipts = ok(console.api.get("/v1/topics/receipts", headers=console.auth))
    assert (receipts["tracking"], receipts["track_sms"]) == (True, True)
    assert serious_violations(page) == []
    page.locator("#tracking").scroll_into_view_if_needed()
    shoot(page, "topic-desktop")
    page.set_viewport_size(PHONE)
    page.reload()
    shoot(page, "topic-phone")
    fits(page)
    page.close()


def test_the_contact_page_shows_the_persons_choice(
    console: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    person(console.api, console.auth, "ann", name="Ann", email="ann@example.com")
    ok(
        console.api.patch(
            "/v1/contacts/ann/preferences", json={"tracking_off": True}, headers=console.auth
        )
    )
    page = browser.new_page(viewport=DESKTOP)
    page.set_default_timeout(20_000)
    sign_in(page, console.base)
    page.goto(f"{console.base}/console/contacts/ann")
    facts = page.locator("dt:has-text('Tracking') + dd").inner_text()
    assert facts.startswith("off (the person's choice)")
    assert serious_violations(page) == []
    shoot(page, "contact-desktop")
    page.set_viewport_size(PHONE)
    page.reload()
    fits(page)
    shoot(page, "contact-phone")
    page.close()
