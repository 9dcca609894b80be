"""The person's tracking switch on their preferences page, in headless Chromium: reached from
the link in a real e-mail, on by default, turned off without JavaScript, saved, and still off
when the page is opened again; the API and the timeline say the same. Screenshots at 1280 and
390 px (English and Russian) go to tests/e2e/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.dispatching import ok, person, settled, timeline, topic
from tests.e2e.browser import (  # noqa: F401 - browser is a fixture
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    browser,
    serious_violations,
    wider,
)
from tests.e2e.live import LiveHub, live_hub

NEWS = {
    "name": "Product news",
    "allowed_channels": ["email"],
    "default_channels": ["email"],
    "category": "marketing",
}
CONTENT = {"": {"email_subject": "News", "email_text": "Hello", "email_html": "<p>Hello</p>"}}


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(sqlite_template, tmp_path) as hub:
        topic(hub.api, hub.auth, "news", **NEWS)
        yield hub


def link_for(site: LiveHub, external_id: str, *, locale: str = "en") -> str:
    """The preferences link in the e-mail a new subscriber of `news` is sent."""
    address = f"{external_id}@example.com"
    person(
        site.api,
        site.auth,
        external_id,
        name=external_id.title(),
        email=address,
        locale=locale,
        timezone="Europe/Berlin",
        subscribe={"news": ["email"]},
    )
    body: dict[str, Any] = {"topic": "news", "recipients": [external_id], "content": CONTENT}
    accepted = ok(site.api.post("/v1/notifications", json=body, headers=site.auth), 202)
    settled(site.api, site.auth, accepted["id"])
    (received,) = [m for m in site.smtp.received if address in m.rcpt_tos]
    return preferences_link(received.message)


def preferences_link(message: Any) -> str:
    found = re.search(
        r'href="([^"]+/preferences/[^"]+)"', message.get_body(("html",)).get_content()
    )
    assert found, "the e-mail carries no preferences link"
    return found.group(1)


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"tracking-{name}.png", full_page=True)


def save(page: Page) -> None:
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    answer = navigation.value
    assert answer is not None
    assert answer.status == 200


def test_a_person_turns_tracking_off_and_it_stays_off(
    site: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    link = link_for(site, "ann")
    checked = browser.new_page(viewport=DESKTOP)  # axe runs as a script, so this page has them
    checked.goto(link)
    assert serious_violations(checked) == []
    shoot(checked, "en-desktop")
    checked.close()

    # The person's own browser runs no script at all: the form must work without.
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(link)
    box = page.get_by_label("Let us see when you open our e-mails and follow their links")
    assert box.is_checked()  # on until the person says otherwise
    hint = page.inner_text("#tracking-help")
    assert "tiny invisible image" in hint
    assert "neither" in hint
    assert box.get_attribute("aria-describedby") == "tracking-help"

    box.uncheck()
    save(page)
    notice = page.inner_text("[role=status]")
    assert "Opens and clicks: not tracked" in notice
    assert not page.is_checked("#tracking")
    shoot(page, "en-desktop-saved")

    page.goto(link)  # opened again later, from the same e-mail
    assert not page.is_checked("#tracking")
    prefs = ok(site.api.get("/v1/contacts/ann/preferences", headers=site.auth))
    assert prefs["tracking_off"] is True
    (changed,) = [
        e for e in timeline(site.api, site.auth, "ann") if e["actor_kind"] == "self_service"
    ]
    assert changed["type"] == "preferences.changed"
    assert changed["changes"] == {"tracking_off": {"before": False, "after": True}}
    assert changed["source"] == "self-service"

    # A form that never asked the question (an older page, another client) leaves it alone.
    csrf = re.search(r'name="csrf" value="([^"]+)"', httpx.get(link).text)
    assert csrf
    older = {"csrf": csrf.group(1), "topic:news": "on", "channels:news": "email"}
    assert httpx.post(link, data=older, headers={"origin": site.base}).status_code == 200
    assert ok(site.api.get("/v1/contacts/ann/preferences", headers=site.auth))["tracking_off"]

    # Saving again without touching it changes nothing; ticking it turns tracking back on.
    save(page)
    assert "Nothing had changed" in page.inner_text("[role=status]")
    page.check("#tracking")
    save(page)
    assert "Opens and clicks: we may see them" in page.inner_text("[role=status]")
    assert (
        ok(site.api.get("/v1/contacts/ann/preferences", headers=site.auth))["tracking_off"] is False
    )
    context.close()


@pytest.mark.parametrize("locale", ["en", "ru"])
def test_the_switch_fits_a_phone(
    site: LiveHub,
    browser: Browser,  # noqa: F811
    locale: str,
) -> None:
    link = link_for(site, f"eva-{locale}", locale=locale)
    page = browser.new_page(viewport=PHONE)
    page.set_default_timeout(20_000)
    page.goto(link)
    assert page.get_attribute("html", "lang") == locale
    assert page.is_visible("#tracking")
    assert page.is_visible("#tracking-help")
    shoot(page, f"{locale}-phone")
    assert wider(page) == []  # no sideways scroll at 390 px
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert serious_violations(page) == []
    page.close()
