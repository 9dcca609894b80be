"""An employee chooses to hear of their clients on their own preferences page, in headless
Chromium: reached from the link in a real e-mail, "My clients' replies" ticked with "My teams'
clients" picked, saved without JavaScript; the API says the same. Screenshots at 1280 and
390 px (English and Russian) go to tests/e2e/screenshots/self_service_client_topics*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from hub.domain import ClientTopic
from tests.dispatching import ok, person, settled, topic
from tests.e2e.browser import (  # noqa: F401 - browser is a fixture
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    browser,
    serious_violations,
    wider,
)
from tests.e2e.live import LiveHub, live_hub
from tests.e2e.test_self_service import unlabelled

REPLIES = ClientTopic.REPLIES.value
CONTENT = {"": {"email_subject": "News", "email_text": "Hello", "email_html": "<p>Hello</p>"}}


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(sqlite_template, tmp_path) as hub:
        topic(hub.api, hub.auth, "news", name="Company news", allowed_channels=["email", "sms"])
        ok(hub.api.put("/v1/teams/north", json={"name": "North"}, headers=hub.auth))
        yield hub


def link_for(site: LiveHub, external_id: str, *, locale: str = "en") -> str:
    """The preferences link in the company news an employee is sent."""
    address = f"{external_id}@corp.example"
    person(
        site.api,
        site.auth,
        external_id,
        kind="employee",
        name=external_id.title(),
        email=address,
        phone="+14155550199",
        locale=locale,
        timezone="Europe/Berlin",
        teams=["north"],
        subscribe={"news": ["email"]},
    )
    body: dict[str, Any] = {"topic": "news", "recipients": [external_id], "content": CONTENT}
    accepted = ok(site.api.post("/v1/notifications", json=body, headers=site.auth), 202)
    settled(site.api, site.auth, accepted["id"])
    (received,) = [m for m in site.smtp.received if address in m.rcpt_tos]
    html = received.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    found = re.search(r'href="([^"]+/preferences/[^"]+)"', html)
    assert found, "the e-mail carries no preferences link"
    return found.group(1)


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"self_service_client_topics-{name}.png", full_page=True)


def checked_page(chromium: Browser, link: str, viewport: dict[str, int]) -> Page:
    """The page with scripts on, for axe; the person's own browser below runs none."""
    page = chromium.new_page(viewport=viewport)  # type: ignore[arg-type]
    page.goto(link)
    assert serious_violations(page) == []
    assert unlabelled(page) == []
    return page


def test_an_employee_hears_of_their_teams_clients_replies(
    site: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    link = link_for(site, "anna")
    page = checked_page(browser, link, DESKTOP)
    heading = page.get_by_role("heading", name="About the clients you look after")
    assert heading.is_visible()
    assert page.get_by_label("Whose clients").count() == len(ClientTopic)
    shoot(page, "en-desktop")
    page.close()

    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)  # type: ignore[arg-type]
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(link)
    replies = page.get_by_role("group", name="My clients' replies")
    replies.get_by_label("Send me this").check()
    whose = replies.get_by_label("Whose clients")
    assert [o.strip() for o in whose.locator("option").all_inner_texts()] == [
        "Clients I look after",
        "My teams' clients",
    ]  # "All clients" is for staff who see every client
    whose.select_option(label="My teams' clients")
    replies.get_by_label("Text message (SMS)").check()
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    answer = navigation.value
    assert answer is not None
    assert answer.status == 200
    notice = page.inner_text("[role=status]")
    assert "My clients' replies: subscribed" in notice
    assert "My clients' replies, whose clients: My teams' clients" in notice
    assert (
        page.get_by_role("group", name="My clients' replies")
        .get_by_label("Whose clients")
        .input_value()
        == "teams"
    )
    shoot(page, "en-desktop-saved")
    context.close()

    saved = ok(site.api.get(f"/v1/contacts/anna/subscriptions/{REPLIES}", headers=site.auth))
    assert (saved["status"], saved["scope"]) == ("subscribed", "teams")
    assert saved["channels"] == ["email", "sms"]
    assert saved["consent_source"] == "self-service"

    phone = checked_page(browser, link, PHONE)
    assert wider(phone) == []  # no sideways scroll at 390 px
    shoot(phone, "en-phone")
    phone.close()


def test_the_russian_page_fits_a_phone(
    site: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = checked_page(browser, link_for(site, "boris", locale="ru"), PHONE)
    heading = "О клиентах, которых вы ведёте"  # noqa: RUF001 - Russian, not a Latin O
    assert page.get_by_role("heading", name=heading).is_visible()
    assert page.get_by_label("Чьи клиенты").count() == len(ClientTopic)
    assert wider(page) == []
    shoot(page, "ru-phone")
    page.close()
