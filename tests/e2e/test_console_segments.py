"""The segment editor in headless Chromium: a marketer builds "clients who are on the pro plan
OR speak Russian" with forms, watches the audience count change as they type (no reload),
saves it, and a campaign created through the API by its key goes to exactly those people.
A refused save names each field at fault; without JavaScript the Count button does the
counting. Screenshots at desktop and phone width go to tests/e2e/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from hub.domain import StaffRole
from hub.services import staff
from tests.dispatching import ok, person, topic
from tests.e2e.browser import DESKTOP, PHONE, SCREENSHOTS, browser  # noqa: F401 - a fixture
from tests.e2e.live import LiveHub, live_hub

PASSWORD = "correct horse battery staple"
# Who is who: the segment takes clients (not c3) on the pro plan or speaking Russian.
PEOPLE = {
    "c0": {"kind": "client", "locale": "ru-RU", "attributes": {"plan": "free"}},
    "c1": {"kind": "client", "locale": "en", "attributes": {"plan": "pro"}},
    "c2": {"kind": "client", "locale": "en", "attributes": {"plan": "team"}},
    "c3": {"kind": "employee", "locale": "ru", "attributes": {"plan": "pro"}},
    "c4": {"kind": "client", "locale": "de", "attributes": {}},
}
SAVED = {
    "all": [
        {"kind": "client"},
        {
            "any": [
                {"attribute": {"name": "plan", "equals": "pro"}},
                {"locale": ["ru"]},
            ]
        },
    ]
}


@pytest.fixture
def console(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(sqlite_template, tmp_path) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, "mia@acme.example", PASSWORD, StaffRole.MARKETER)
            session.commit()
        topic(hub.api, hub.auth, "news", name="Product news", allowed_channels=["email"])
        for i, (external_id, fields) in enumerate(PEOPLE.items()):
            person(
                hub.api,
                hub.auth,
                external_id,
                name=f"Client {i}",
                email=f"{external_id}@example.com",
                subscribe={"news": ["email"]},
                **fields,
            )
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
    page.screenshot(path=SCREENSHOTS / f"console-segments-{name}.png", full_page=True)


def fits(page: Page) -> bool:
    """No sideways scrolling of the page itself."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def press(page: Page, selector: str) -> None:
    """A button that posts the editor's form: the page comes back with the change."""
    with page.expect_navigation():
        page.click(selector)


def audience(page: Page) -> str:
    return page.inner_text("#audience")


def test_a_marketer_builds_an_or_segment_sees_the_count_live_and_a_campaign_uses_it(
    console: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, console.base)
    page.click("nav >> text=Segments")
    assert "No segments yet." in page.inner_text("main")
    with page.expect_navigation():
        page.click("text=Create a segment")
    assert "5 people match" in audience(page)  # no condition yet: everyone
    # Only the editor runs a script, Hub's own; the list (like every other page) runs none.
    editor_csp = page.request.get(page.url).headers["content-security-policy"]
    assert "script-src 'self'" in editor_csp
    assert "unsafe" not in editor_csp
    listed = page.request.get(f"{console.base}/console/segments")
    assert "script-src" not in listed.headers["content-security-policy"]
    script = page.request.get(f"{console.base}/static/segments.js")
    assert script.headers["content-type"].startswith("text/javascript")

    page.fill("#key", "pro-or-russian")
    page.fill("#name", "Pro or Russian-speaking clients")
    # Structure: each button posts the form and the page comes back with the new part.
    page.select_option("#r-add", "kind")
    press(page, "button[value='add:r']")
    assert page.input_value("#r-0-value") == "client"
    assert page.input_value("#key") == "pro-or-russian"  # what was typed survives
    assert "4 people match" in audience(page)
    page.select_option("#r-group", "any")
    press(page, "button[value='group:r']")
    page.select_option("#r-1-add", "attribute")
    press(page, "button[value='add:r-1']")
    page.select_option("#r-1-add", "locale")
    press(page, "button[value='add:r-1']")
    assert page.locator("#r-1-1-value").evaluate("e => e === document.activeElement")
    assert "Not counted yet." in audience(page)  # the new conditions are still empty

    # From here on the page is not reloaded: the count follows the form as it changes.
    page.evaluate("window.stillHere = true")
    page.fill("#r-1-0-name", "plan")
    page.fill("#r-1-0-value", "pro")
    page.fill("#r-1-1-value", "ru")
    expect(page.locator("#audience .seg-number")).to_have_text("2")
    assert "Client 0" in audience(page)
    assert "Client 1" in audience(page)
    page.fill("#r-1-0-value", "enterprise")  # nobody's plan: only the Russian speaker
    expect(page.locator("#audience .seg-number")).to_have_text("1")
    assert "1 person matches" in audience(page)
    page.select_option("#topic", "news")
    expect(page.locator("#audience")).to_contain_text("among the audience of Product news")
    page.fill("#r-1-0-value", "pro")
    expect(page.locator("#audience .seg-number")).to_have_text("2")
    assert page.evaluate("window.stillHere") is True
    assert page.locator(".seg-count-button").is_hidden()  # the script counts; no button needed
    shoot(page, "editor")

    press(page, "button[value=save]")
    assert page.url.endswith("/console/segments/pro-or-russian/edit?saved=created")
    assert page.inner_text("[role=status]") == "Segment saved."
    saved = ok(console.api.get("/v1/segments/pro-or-russian", headers=console.auth))
    assert saved["conditions"] == SAVED
    assert saved["created_by"] == "mia@acme.example"
    page.click("nav >> text=Segments")
    assert "clients and (plan is pro or language ru)" in page.inner_text("table.segments")
    shoot(page, "list")

    # The API names the saved segment in a campaign, which goes to exactly its people.
    template = {"variants": {"": {"email_subject": "Hi {{ contact.name }}", "email_text": "Hi"}}}
    ok(console.api.put("/v1/templates/hello", json=template, headers=console.auth))
    body = {"name": "For the segment", "topic": "news", "template": "hello"}
    campaign = ok(
        console.api.post(
            "/v1/campaigns", json=body | {"segment_key": "pro-or-russian"}, headers=console.auth
        )
    )
    assert campaign["segment"] == SAVED
    ok(console.api.post(f"/v1/campaigns/{campaign['id']}/schedule", headers=console.auth))
    sent = console.smtp.wait_for(2)
    assert sorted(m.rcpt_tos[0] for m in sent) == ["c0@example.com", "c1@example.com"]
    page.goto(f"{console.base}/console/campaigns/{campaign['id']}")
    assert "clients and (plan is pro or language ru)" in page.inner_text("main")
    # The console's campaign form offers it too.
    page.goto(f"{console.base}/console/campaigns/new")
    page.select_option("#topic", "news")
    page.fill("#name", "Also from the console")
    page.select_option("#seg-key", "pro-or-russian")
    press(page, "text=Count the audience")
    assert page.inner_text("[role=status]") == "The audience now: 2 people."

    # At phone width the saved segment's editor fits the screen.
    phone = browser.new_page(viewport=PHONE)
    sign_in(phone, console.base)
    phone.goto(f"{console.base}/console/segments/pro-or-russian/edit")
    phone.wait_for_selector("#audience .seg-number")
    assert fits(phone)
    shoot(phone, "editor-phone")
    phone.goto(f"{console.base}/console/segments")
    assert fits(phone)
    shoot(phone, "list-phone")
    phone.close()
    page.close()


def test_a_refused_save_names_each_field_and_links_to_it(
    console: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, console.base)
    page.goto(f"{console.base}/console/segments/new")
    page.fill("#key", "Not A Key")
    page.select_option("#r-add", "attribute")
    press(page, "button[value='add:r']")
    page.fill("#r-0-name", "spent")
    page.select_option("#r-0-op", "number")
    page.fill("#r-0-from", "lots")
    with page.expect_navigation() as answer:
        page.click("button[value=save]")
    assert answer.value is not None
    assert answer.value.status == 422
    summary = page.inner_text(".error-summary")
    assert "The key must be" in summary
    assert "Enter a name" in summary
    assert "Condition 1: Enter a number, like 100 or 2.5" in summary
    assert page.get_attribute("#r-0-from", "aria-invalid") == "true"
    assert "Enter a number" in page.inner_text("#r-0-from-error")
    page.click(".error-summary a[href='#r-0-from']")
    assert page.locator("#r-0-from").evaluate("e => e === document.activeElement")
    assert fits(page)
    shoot(page, "errors")
    phone = browser.new_page(viewport=PHONE)
    sign_in(phone, console.base)
    phone.goto(f"{console.base}/console/segments/new")
    phone.select_option("#r-add", "attribute")
    press(phone, "button[value='add:r']")
    phone.fill("#r-0-name", "spent")
    phone.select_option("#r-0-op", "number")
    phone.fill("#r-0-from", "lots")
    press(phone, "button[value=save]")
    assert fits(phone)
    shoot(phone, "errors-phone")
    phone.close()
    page.close()


def test_without_javascript_the_count_button_counts(
    console: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    sign_in(page, console.base)
    page.goto(f"{console.base}/console/segments/new")
    page.select_option("#r-add", "locale")
    press(page, "button[value='add:r']")
    page.fill("#r-0-value", "ru")
    assert page.locator(".seg-count-button").is_visible()
    press(page, ".seg-count-button")
    assert "2 people match" in audience(page)  # c0 (ru-RU) and c3 (ru)
    page.fill("#r-0-value", "en")
    with page.expect_navigation():
        page.press("#r-0-value", "Enter")  # Enter counts too; it adds and removes nothing
    assert "2 people match" in audience(page)  # c1 and c2
    assert page.locator("#r-0").count() == 1
    context.close()
