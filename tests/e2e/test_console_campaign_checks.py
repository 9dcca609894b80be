"""A campaign that cannot fail silently, in headless Chromium: a marketer breaks a variable of
the ru SMS in the template editor; the campaign's dry run names the part and line in plain
words and shows what the others get; Schedule is refused with the same words; the marketer
follows the link to the part, fixes it, and a test send, rendered as the first person of the
audience, says the mail server accepted it (the SMTP peer has it) and whose message it is.
Pages at 1280 and 390 px go to tests/e2e/screenshots/, checked with axe-core and for
sideways scrolling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from hub.domain import StaffRole
from hub.services import staff
from tests.dispatching import ok, person, topic
from tests.e2e.browser import (  # noqa: F401 - browser is a fixture
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    browser,
    serious_violations,
)
from tests.e2e.live import LiveHub, live_hub

PASSWORD = "correct horse battery staple"
MARKETER = "mia@acme.example"
LONG_URL = "https://shop.example/winter/" + "A1B2C3D4" * 10
TEMPLATE = {
    "variants": {
        "": {
            "email_subject": "Winter: {{ data.offer }} for {{ contact.name }}",
            "email_text": "{{ data.offer }} on coats, {{ contact.name }}. " + LONG_URL,
            "sms_body": "{{ data.offer }} on coats: " + LONG_URL,
        },
        "ru": {
            "email_subject": "Зима: {{ data.offer }} для {{ contact.name }}",
            "email_text": "{{ data.offer }} на пальто.",
            "sms_body": "{{ data.offer }} на пальто",
        },
    }
}


@pytest.fixture
def console(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(sqlite_template, tmp_path) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, MARKETER, PASSWORD, StaffRole.MARKETER)
            session.commit()
        topic(hub.api, hub.auth, "offers", name="Offers", allowed_channels=["email", "sms"])
        ok(hub.api.put("/v1/templates/winter", json=TEMPLATE, headers=hub.auth))
        for i, locale in enumerate(["ru", "ru", "en", None]):
            person(
                hub.api,
                hub.auth,
                f"c{i}",
                name=f"Client {i}",
                email=f"c{i}@example.com",
                phone=f"+4915112345{i:03d}",
                locale=locale,
                subscribe={"offers": ["email", "sms"]},
            )
        yield hub


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#email", MARKETER)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def click(page: Page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def check_page(
    page: Page,
    browser: Browser,  # noqa: F811
    name: str,
    again: Callable[[Page], None] | None = None,
) -> None:
    """Screenshots at both widths; a phone never scrolls sideways; axe finds nothing serious.
    `again` brings the phone to the same page (one that answers a POST); else its URL."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"campaign-checks-{name}.png", full_page=True)
    phone = browser.new_page(viewport=PHONE)
    phone.context.add_cookies(page.context.cookies())
    if again is None:
        phone.goto(page.url)
    else:
        again(phone)
    phone.screenshot(path=SCREENSHOTS / f"campaign-checks-{name}-phone.png", full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
    for shown in (page, phone):
        assert serious_violations(shown) == [], name
    phone.close()


def test_a_broken_variable_is_shown_refused_fixed_and_tested(
    console: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, console.base)

    # Break a variable of the ru SMS in the editor.
    page.goto(f"{console.base}/console/templates/edit?key=winter&locale=ru")
    page.fill("#sms_body", "{{ data.discount }} на пальто")
    click(page, "button[value=save]")

    page.goto(f"{console.base}/console/campaigns/new")
    page.fill("#name", "Winter coats")
    page.select_option("#topic", "offers")
    page.select_option("#template", "winter")
    page.fill("#data", '{"offer": "20% off"}')
    click(page, "text=Create draft")
    here = page.url

    click(page, "button:has-text('Dry-run')")
    errors = page.inner_text(".render-errors")
    assert "ru · sms_body · line 1: the campaign's data has no 'discount' (it has offer)" in errors
    assert "2 people (tried for c0)" in errors
    renders = page.inner_text(".renders")
    assert "ru · email (2 people, e.g. c0): Зима: 20% off для Client 0 — “20% off на пальто.”" in (
        renders
    )
    assert "hub.invalid" not in renders  # Hub's footer is not what the marketer wrote
    assert "en · sms" in renders
    assert "characters, 1 SMS" in renders or "characters, 2 SMS" in renders
    assert "send by email" in page.inner_text("table")  # the counts are still there
    check_page(page, browser, "dry-run")

    click(page, "button:has-text('Schedule')")
    refusal = page.inner_text(".alert[role=alert] >> nth=0")
    assert refusal.startswith("Not scheduled: the template does not render for 2 people")
    assert "ru · sms_body · line 1: the campaign's data has no 'discount'" in refusal
    assert page.inner_text(".state") == "draft"

    def refused(phone: Page) -> None:
        phone.goto(here)
        click(phone, "button:has-text('Schedule')")

    check_page(page, browser, "refused", refused)

    # The error links to the part to fix (and to the campaign's data, the other fix).
    assert page.get_attribute(".render-errors a.fix-data", "href") == "#data"
    click(page, ".render-errors a:not(.fix-data)")
    assert "locale=ru&part=sms_body&line=1&campaign=" in page.url
    page.fill("#sms_body", "{{ data.offer }} на пальто")
    click(page, "button[value=save]")

    page.goto(here)
    click(page, "button:has-text('Send a test to me')")
    assert "?test=" in page.url
    outcome = page.inner_text("#test")
    assert page.inner_text("#test p >> nth=0") == "The test: accepted by the mail server (sent)."
    assert page.inner_text("#test .whose").startswith(
        f"The message Client 0 (c0) would get, sent to {MARKETER}."
    )
    (mail,) = console.smtp.wait_for(1)
    assert mail.rcpt_tos == (MARKETER,)
    assert mail.message["Subject"] == "Зима: 20% off для Client 0"  # c0's language and name
    page.reload()  # the page reads the delivery again: the same truth
    assert page.inner_text("#test") == outcome
    check_page(page, browser, "tested")

    click(page, "button:has-text('Schedule')")
    assert page.inner_text(".state") in ("scheduled", "sending", "done")
