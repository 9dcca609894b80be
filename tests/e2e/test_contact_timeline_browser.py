"""A person's timeline in headless Chromium, at 1280 and at 390 px: every kind of event in
words, no sideways scrolling on a phone, no serious axe-core finding; the campaign and the
notification a sentence names open from it, and the notification names the person back.
Screenshots go to tests/e2e/screenshots/contact-timeline-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from hub.domain import EventType, StaffRole
from hub.services import staff
from tests.e2e.browser import DESKTOP, PHONE, SCREENSHOTS, browser, serious_violations, wider  # noqa: F401 - a fixture
from tests.e2e.live import LiveHub, live_hub
from tests.timelines import EMAIL, Varied, varied

PASSWORD = "correct horse battery staple"
VIC = "vic@acme.example"


@pytest.fixture
def world(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[LiveHub, Varied]]:
    with live_hub(sqlite_template, tmp_path) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, VIC, PASSWORD, StaffRole.VIEWER)
            session.commit()
        yield hub, varied(hub.api, hub.auth, hub.runtime)


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#email", VIC)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def go(page: Page, click: str) -> int:
    with page.expect_navigation() as navigation:
        page.click(click)
    response = navigation.value
    assert response is not None
    return response.status


def test_a_profile_with_a_varied_timeline_reads_and_fits(
    world: tuple[LiveHub, Varied],
    browser: Browser,  # noqa: F811
) -> None:
    hub, ada = world
    SCREENSHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, hub.base)
    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        response = page.goto(f"{hub.base}/console/contacts/{ada.external_id}")
        assert response is not None
        assert response.status == 200
        page.locator("#timeline").scroll_into_view_if_needed()
        page.screenshot(path=SCREENSHOTS / f"contact-timeline-{width}.png", full_page=True)
        assert serious_violations(page) == []
        if width == "phone":
            fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            assert fits, f"the profile scrolls sideways at 390 px: {wider(page)}"
            # Each event is a card as wide as the page: nothing in it scrolls either.
            region = page.locator("#timeline + .scroll")
            assert region.evaluate("e => e.scrollWidth <= e.clientWidth")

    page.set_viewport_size(DESKTOP)
    kinds = page.locator("table.timeline > tbody > tr").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)"
    )
    assert set(kinds) == set(EventType)
    sent = page.locator(
        "table.timeline > tbody > tr[data-kind='delivery.sent']", has_text="campaign"
    )
    campaign = f"campaign ‘Spring offer’ (notification #{ada.notification_id})"  # noqa: RUF001
    what = sent.locator("td.what").inner_text()
    assert what.startswith(f"E-mail sent to {EMAIL} for {campaign}"), what
    assert sent.locator("td.what code.kind").inner_text() == "delivery.sent"

    assert go(page, "table.timeline tr[data-kind='delivery.sent'] >> text=Spring offer") == 200
    assert page.url.endswith(f"/console/campaigns/{ada.campaign_id}")
    page.go_back()
    assert (
        go(page, f"table.timeline tr[data-kind='delivery.sent'] >> text=#{ada.notification_id}")
        == 200
    )
    assert page.url.endswith(f"/console/notifications/{ada.notification_id}")
    person = page.locator("table.deliveries tbody td.person").first
    assert person.inner_text() == "Ada Lovelace ada"
    page.screenshot(path=SCREENSHOTS / "contact-timeline-notification-desktop.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.reload()
    page.screenshot(path=SCREENSHOTS / "contact-timeline-notification-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), wider(page)
    assert go(page, "table.deliveries td.person a") == 200
    assert page.url.endswith("/console/contacts/ada")
    page.close()
