"""The reports in headless Chromium: a viewer finds a failed delivery from the notification
list (narrowed to those with failures) to its notification and the person, and reads a
campaign's report, its chart drawn in the page and its figures in a table that opens.
Every page fits a 390 px phone without sideways scrolling. Screenshots at desktop and phone
width go to tests/e2e/screenshots/."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from hub.db.base import utcnow
from hub.domain import StaffRole
from hub.services import staff
from tests import reporting
from tests.dispatching import ok, person, settled
from tests.e2e.browser import DESKTOP, PHONE, SCREENSHOTS, browser  # noqa: F401 - a fixture
from tests.e2e.live import LiveHub, live_hub

PASSWORD = "correct horse battery staple"
VIC = "vic@acme.example"


@pytest.fixture
def console(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[LiveHub, reporting.Mixed]]:
    with live_hub(sqlite_template, tmp_path) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, VIC, PASSWORD, StaffRole.VIEWER)
            session.commit()
        with hub.runtime.engine.begin() as db:
            mixed = reporting.mixed(db, now=utcnow())
            # p1, who left Offers after the campaign reached them, said why.
            reporting.event(
                db,
                1,
                "refusal.reason",
                at=mixed.start + dt.timedelta(minutes=31),
                topic_key="offers",
                changes={"topic": "offers", "note": "Three a week is too many"},
                reason="too_many",
            )
        yield hub, mixed


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#email", VIC)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def shoot(page: Page, phone: Page, name: str) -> None:
    """The page at desktop width, and the same address at phone width, where it must fit."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"console-reports-{name}-desktop.png", full_page=True)
    phone.goto(page.url)
    phone.screenshot(path=SCREENSHOTS / f"console-reports-{name}-phone.png", full_page=True)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{name} is {width} px wide at 390 px: {wider(phone)}"


def wider(page: Page) -> list[str]:
    """The elements that reach past the window's right edge, to say what to fix."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .filter(e => !e.parentElement.closest('.scroll'))
            .slice(0, 5)
            .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)"""
    )
    return found


def go(page: Page, click: str) -> int:
    with page.expect_navigation() as navigation:
        page.click(click)
    response = navigation.value
    assert response is not None
    return response.status


def test_a_viewer_finds_a_failure_and_reads_the_report(
    console: tuple[LiveHub, reporting.Mixed],
    browser: Browser,  # noqa: F811
) -> None:
    hub, mixed = console
    # One notification sent for real, through the workers to the SMTP peer.
    person(hub.api, hub.auth, "ann", email="ann@example.com", subscribe={"offers": ["email"]})
    body = {"topic": "offers", "template": "offer", "recipients": ["ann"]}
    sent = ok(hub.api.post("/v1/notifications", json=body, headers=hub.auth), 202)
    settled(hub.api, hub.auth, sent["id"])

    page = browser.new_page(viewport=DESKTOP)
    phone = browser.new_page(viewport=PHONE)
    sign_in(page, hub.base)
    sign_in(phone, hub.base)

    page.goto(f"{hub.base}/console/notifications")
    numbers = page.locator("table.notification-list tbody td:first-child a").all_inner_texts()
    assert numbers == [f"#{sent['id']}", f"#{mixed.notification_id}"]
    assert page.locator("tbody tr").first.locator("td.counts").inner_text() == "sent 1"
    shoot(page, phone, "notifications")

    page.check("#failing")
    assert go(page, "button:has-text('Show')") == 200
    assert "failing=true" in page.url
    assert page.locator("table.notification-list tbody td:first-child a").all_inner_texts() == [
        f"#{mixed.notification_id}"
    ]
    assert go(page, f"text=#{mixed.notification_id}") == 200
    assert page.locator("h1").inner_text() == f"Notification #{mixed.notification_id}"
    shoot(page, phone, "notification")

    assert go(page, "nav.show >> text=Failed or bounced") == 200
    states = page.locator("table.deliveries tbody td:nth-child(3)").all_inner_texts()
    assert states == ["bounced", "failed", "failed"]
    why = page.locator("table.deliveries tbody td.why").all_inner_texts()
    assert why[1].startswith("The provider refused this message")
    shoot(page, phone, "notification-failures")
    assert go(page, "table.deliveries >> text=p8") == 200
    assert page.url.endswith("/console/contacts/p8")

    page.goto(f"{hub.base}/console/notifications/{mixed.notification_id}")
    assert go(page, "text=the report of campaign Winter sale") == 200
    assert page.url.endswith(f"/console/campaigns/{mixed.campaign_id}/report")
    assert page.inner_text("#total-sent") == "9"
    chart = page.locator("svg.chart")
    assert chart.get_attribute("role") == "img"
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 400
    assert box["height"] > 200  # it scales with its viewBox: not the 150 px default height
    table = page.locator("details.figures table")
    assert not table.is_visible()
    page.click("details.figures summary")
    assert table.is_visible()
    last = table.locator("tbody tr").last.locator("td").all_inner_texts()
    assert last == ["9", "6", "1", "2", "5"]
    waits = page.locator("ul.reasons li").all_inner_texts()
    assert waits[0].startswith("3 SMS wait for the legal window")
    left = page.locator("table.reasons-left tbody tr").all_inner_texts()
    assert [" ".join(row.split()) for row in left] == ["Too many messages 1"]
    assert "answered the optional question" in page.inner_text("#why-they-left + table + p")
    for view, width in ((page, 1280), (phone, 390)):
        view.goto(f"{hub.base}/console/campaigns/{mixed.campaign_id}/report")
        heading = view.locator("#why-they-left").bounding_box()
        assert heading is not None
        clip = {"x": 0, "y": heading["y"] - 16, "width": width, "height": 320}
        name = f"console-reports-why-they-left-{'desktop' if width > 390 else 'phone'}.png"
        view.screenshot(path=SCREENSHOTS / name, full_page=True, clip=clip)  # type: ignore[arg-type]
    shoot(page, phone, "campaign-report")
    phone_chart = phone.locator("svg.chart").bounding_box()
    assert phone_chart is not None
    assert phone_chart["x"] + phone_chart["width"] <= 390  # the whole chart in sight
    assert phone_chart["height"] > 150

    page.goto(f"{hub.base}/console/notifications/424242")
    shoot(page, phone, "notification-missing")
