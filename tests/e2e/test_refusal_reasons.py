"""Issue 21, item 3, in headless Chromium: a person who unsubscribes may say why.

Links come from a real e-mail the SMTP peer received. On the preferences page and on the
unsubscribe link's confirmation page the question appears after the unsubscribe, optional;
an answer lands on the timeline (the API's) and reads in words on the console's profile;
skipping it records nothing. Pages are checked with axe and photographed at 1280 and 390 px
(tests/e2e/screenshots/why-*.png).
"""

# The timeline's words use typographic quotation marks and dashes.
# ruff: noqa: RUF001

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from hub.domain import StaffRole
from hub.services import staff
from tests.dispatching import ok, person, settled, timeline, topic, wait_for
from tests.e2e.browser import (  # noqa: F401 - a fixture
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    browser,
    serious_violations,
    wider,
)
from tests.e2e.live import LiveHub, live_hub

PASSWORD = "correct horse battery staple"
VIC = "vic@acme.example"
CONTENT = {"": {"email_subject": "Offers", "email_text": "Hi", "email_html": "<p>Hi</p>"}}


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(sqlite_template, tmp_path) as hub:
        topic(hub.api, hub.auth, "offers", name="Offers", allowed_channels=["email"])
        topic(hub.api, hub.auth, "news", name="Product news", allowed_channels=["email"])
        with hub.runtime.sessions() as session:
            staff.create(session, VIC, PASSWORD, StaffRole.VIEWER)
            session.commit()
        yield hub


def mailed(site: LiveHub, who: str, locale: str = "en") -> Any:
    """Subscribe `who` to both topics, send them an offer; the message the peer received."""
    address = f"{who}@example.com"
    subscribe = {"offers": ["email"], "news": ["email"]}
    person(site.api, site.auth, who, email=address, locale=locale, subscribe=subscribe)
    body = {"topic": "offers", "recipients": [who], "content": CONTENT}
    sent = ok(site.api.post("/v1/notifications", json=body, headers=site.auth), 202)
    settled(site.api, site.auth, sent["id"])

    def arrived() -> list[Any]:
        return [m for m in site.smtp.received if address in m.rcpt_tos]

    return wait_for(f"mail to {address}", arrived)[0].message


def link_in(message: Any, kind: str) -> str:
    html = message.get_body(("html",)).get_content()
    found = re.search(rf'href="([^"]+/{kind}/[^"]+)"', html)
    assert found, f"no {kind} link in the e-mail"
    return found.group(1)


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def submit(page: Page, button: str) -> int:
    with page.expect_navigation() as navigation:
        page.click(button)
    answer = navigation.value
    assert answer is not None
    return answer.status


def reasons(site: LiveHub, who: str) -> list[dict[str, Any]]:
    return [e for e in timeline(site.api, site.auth, who) if e["type"] == "refusal.reason"]


def test_a_reason_given_on_the_preferences_page_is_on_the_timeline_in_words(
    site: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = browser.new_page(viewport=DESKTOP)
    page.goto(link_in(mailed(site, "ann"), "preferences"))
    assert page.locator("#why-note").count() == 0  # nothing to ask before an unsubscribe
    page.uncheck("#topic-offers")
    assert submit(page, "main > form button[type=submit]") == 200
    assert page.is_visible("text=Would you tell us why?")
    assert serious_violations(page) == []
    shoot(page, "why-preferences-en-desktop")
    page.set_viewport_size(PHONE)
    assert wider(page) == []
    shoot(page, "why-preferences-en-phone")
    page.set_viewport_size(DESKTOP)

    page.check("#why-too_many")
    page.fill("#why-note", "I get three a day")
    assert submit(page, "section.why button[type=submit]") == 200
    assert "Thank you for telling us" in page.inner_text("main")
    (event,) = reasons(site, "ann")
    assert (event["topic"], event["reason"]) == ("offers", "too_many")
    assert event["changes"] == {"topic": "offers", "note": "I get three a day"}

    page.goto(f"{site.base}/console/login")
    page.fill("#email", VIC)
    page.fill("#password", PASSWORD)
    submit(page, "button[type=submit]")
    page.goto(f"{site.base}/console/contacts/ann")
    said = "Said why they unsubscribed from Offers: too many messages — ‘I get three a day’"
    assert said in page.inner_text("main")
    page.close()


def test_skipping_the_question_records_nothing(
    site: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = browser.new_page(viewport=PHONE, locale="ru-RU")
    page.goto(link_in(mailed(site, "ivan", locale="ru"), "preferences"))
    page.uncheck("#topic-offers")
    submit(page, "main > form button")
    assert page.is_visible("text=Расскажете, почему?")
    assert wider(page) == []
    shoot(page, "why-preferences-ru-phone")
    assert submit(page, "text=Нет, спасибо") == 200  # the way out: back to the preferences
    assert page.locator("#why-note").count() == 0
    assert (
        site.api.get("/v1/contacts/ivan/subscriptions/offers", headers=site.auth).json()["status"]
        == "unsubscribed"
    )
    assert reasons(site, "ivan") == []
    page.close()


def test_the_unsubscribe_links_confirmation_page_asks_why(
    site: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = browser.new_page(viewport=PHONE)
    page.goto(link_in(mailed(site, "bea"), "unsubscribe"))
    assert submit(page, "main > form button") == 200
    main = page.inner_text("main")
    assert "You are unsubscribed from “Offers”" in main
    assert "Would you tell us why?" in main
    assert serious_violations(page) == []
    assert wider(page) == []
    shoot(page, "why-unsubscribe-en-phone")
    page.set_viewport_size(DESKTOP)
    shoot(page, "why-unsubscribe-en-desktop")

    page.check("#why-not_relevant")
    # The box stops typing at 500; a longer note sent anyway is answered with the field named.
    page.evaluate("document.querySelector('#why-note').removeAttribute('maxlength')")
    page.fill("#why-note", "x" * 501)
    assert submit(page, "section.why button[type=submit]") == 422
    assert page.inner_text("[role=alert]").count("500") == 1
    assert serious_violations(page) == []
    shoot(page, "why-error-en-desktop")
    assert page.get_attribute("[role=alert] a", "href") == "#why-note"  # links to its field
    assert page.get_attribute("#why-note", "aria-invalid") == "true"
    page.fill("#why-note", "Not for me")
    assert submit(page, "section.why button[type=submit]") == 200
    (event,) = reasons(site, "bea")
    assert (event["topic"], event["reason"]) == ("offers", "not_relevant")
    assert event["changes"]["note"] == "Not for me"
    assert event["source"] == "self-service"
    page.close()
