"""The audience pages in headless Chromium: a marketer finds the newest people without
searching, adds a person (told field by field what is wrong first), changes their details and
attributes, subscribes them to a topic and sees it on their timeline with their own name;
imports a CSV of 1,000 people subscribing them all to a topic and watches the progress page
reach done; and downloads the problems of a file with bad rows as CSV. Every page fits a
390 px phone. Screenshots at desktop and phone width go to tests/e2e/screenshots/."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from hub.domain import StaffRole
from hub.services import staff
from tests.dispatching import ok, person, timeline, topic
from tests.e2e.browser import DESKTOP, PHONE, SCREENSHOTS, browser  # noqa: F401 - a fixture
from tests.e2e.live import LiveHub, live_hub

PASSWORD = "correct horse battery staple"
MIA = "mia@acme.example"
PEOPLE = 1000


@pytest.fixture
def console(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(sqlite_template, tmp_path) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, MIA, PASSWORD, StaffRole.MARKETER)
            session.commit()
        topic(
            hub.api,
            hub.auth,
            "news",
            name="Product news",
            audience="clients",
            allowed_channels=["email", "sms"],
            default_channels=["email"],
        )
        for i in range(3):
            person(hub.api, hub.auth, f"c{i}", name=f"Client {i}", email=f"c{i}@example.com")
        yield hub


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#email", MIA)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith("/console")


def fits(page: Page) -> bool:
    """No sideways scrolling of the page itself (a table may scroll inside its region)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def shoot(page: Page, phone: Page, name: str, *, reload: bool = True) -> None:
    """The page at desktop width, and at phone width (the same address opened again, unless
    the phone was brought to the same state), where it must fit."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"console-audience-{name}-desktop.png", full_page=True)
    if reload:
        phone.goto(page.url)
    phone.screenshot(path=SCREENSHOTS / f"console-audience-{name}-phone.png", full_page=True)
    assert fits(phone), f"{name} scrolls sideways at 390 px: {wider(phone)}"


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


def test_a_marketer_adds_a_person_changes_them_and_subscribes_them(
    console: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = browser.new_page(viewport=DESKTOP)
    phone = browser.new_page(viewport=PHONE)
    sign_in(page, console.base)
    sign_in(phone, console.base)

    # The newest people are listed before any search, newest first, each linked.
    page.goto(f"{console.base}/console/contacts")
    ids = page.locator("table tbody tr td:first-child a").all_inner_texts()
    assert ids == ["c2", "c1", "c0"]
    shoot(page, phone, "contacts")

    assert go(page, "text=Add a person") == 200
    assert add_a_wrong_person(page) == 422
    phone.goto(page.url)
    assert add_a_wrong_person(phone) == 422
    summary = page.locator(".error-summary")
    assert "There is a problem" in summary.inner_text()
    links = summary.locator("a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [
        "#email",
        "#timezone",
        "#attr-value-1",
    ]
    assert "E-mail address:" in page.inner_text("#email-error")
    assert "enter a number" in page.inner_text("#attr-value-1-error")
    assert page.get_attribute("#email", "aria-describedby") == "email-error"
    shoot(page, phone, "contact-errors", reload=False)
    links.nth(0).click()
    assert page.evaluate("document.activeElement.id") == "email"  # the link leads to the field

    page.fill("#email", "ann@example.com")
    page.fill("#phone", "+44 20 7946 0958")
    page.fill("#timezone", "Europe/London")
    page.fill("#attr-value-1", "12")
    page.press("#phone", "Enter")  # Enter saves (it does not add an attribute row)
    page.wait_for_url("**/console/contacts/ann-1?done=created")
    assert page.inner_text("[role=status]") == "The person was added."
    attributes = page.locator("table.attributes")
    assert attributes.locator("th").all_inner_texts()[2:] == ["plan", "seats"]
    assert attributes.locator("td").all_inner_texts() == ["gold", "12"]
    saved = ok(console.api.get("/v1/contacts/ann-1", headers=console.auth))
    assert saved["phone"] == "+442079460958"
    assert saved["attributes"] == {"plan": "gold", "seats": 12}

    assert go(page, "text=Change details") == 200
    page.fill("#name", "Ann Lee-Smith")
    page.fill("#attr-key-0", "")  # removes plan
    assert go(page, "text=Add another attribute") == 200  # no JavaScript needed for more rows
    page.fill("#attr-key-3", "vip")
    page.fill("#attr-value-3", "yes")
    page.select_option("#attr-type-3", "yes-no")
    assert go(page, "button[value=save]:not(.default-action)") == 200
    assert page.inner_text("[role=status]") == "Their details were saved."
    saved = ok(console.api.get("/v1/contacts/ann-1", headers=console.auth))
    assert saved["name"] == "Ann Lee-Smith"
    assert saved["attributes"] == {"seats": 12, "vip": True}

    # Subscribe them: SMS first, then e-mail; a clash of places is named at the field.
    page.select_option("#subscribe-topic", "news")
    assert go(page, "text=Choose channels") == 200
    page.select_option("#rank-sms", "1")
    page.select_option("#rank-email", "1")
    assert go(page, "text=Save subscription") == 422
    # E-mail is listed first, so the clash is named at SMS.
    assert "SMS: E-mail is already 1st choice" in page.inner_text("#rank-sms-error")
    page.select_option("#rank-email", "2")
    shoot(page, phone, "subscription")
    assert go(page, "text=Save subscription") == 200
    assert page.inner_text("[role=status]") == "Their subscription was saved."
    news = ok(console.api.get("/v1/contacts/ann-1/subscriptions/news", headers=console.auth))
    assert news["channels"] == ["sms", "email"]
    assert (news["consent_source"], news["consent_actor"]) == ("console", MIA)

    # The change is on the timeline, by the staff member, in words.
    row = page.locator("table.timeline > tbody > tr[data-kind='subscription.changed']").first
    what = row.locator("td.what").inner_text()
    assert what.startswith("Subscribed to Product news by SMS and e-mail in the console"), what
    assert row.locator("td.what a").get_attribute("href") == "/console/topics/news/edit"
    channels = row.locator("td.details tr", has_text="channels").locator("td").inner_text()
    assert channels == "— → sms, email"
    assert row.locator("td.actor").inner_text().startswith(f"staff: {MIA}")
    (event,) = [
        e
        for e in timeline(console.api, console.auth, "ann-1")
        if e["type"] == "subscription.changed"
    ]
    assert (event["actor_kind"], event["actor"], event["source"]) == ("staff", MIA, "console")
    shoot(page, phone, "profile")

    # Preferences: quiet hours need both ends; then they are saved, on the timeline too.
    assert go(page, "text=Change preferences") == 200
    page.check("#blocked-voice")
    page.fill("#quiet_start", "22:00")
    assert go(page, "text=Save preferences") == 422
    assert "Quiet hours end" in page.inner_text(".error-summary")
    page.fill("#quiet_end", "07:30")
    shoot(page, phone, "preferences")
    assert go(page, "text=Save preferences") == 200
    assert "22:00 to 07:30" in page.inner_text(".facts >> nth=1")
    preferences = ok(console.api.get("/v1/contacts/ann-1/preferences", headers=console.auth))
    assert preferences["blocked_channels"] == ["voice"]
    assert preferences["quiet_hours"] == {"start": "22:00:00", "end": "07:30:00"}
    kinds = [e["type"] for e in timeline(console.api, console.auth, "ann-1")]
    assert kinds[0] == "preferences.changed"

    # The new person leads the list, and a search finds them by part of their name.
    page.goto(f"{console.base}/console/contacts")
    assert page.locator("table tbody tr td:first-child a").first.inner_text() == "ann-1"
    page.fill("#q", "Lee-Sm")
    assert go(page, "text=Search") == 200
    assert page.locator("table tbody tr td:first-child a").all_inner_texts() == ["ann-1"]


def add_a_wrong_person(page: Page) -> int:
    """Fill the new-person form with three mistakes and send it; the answer's status."""
    page.fill("#external_id", "ann-1")
    page.fill("#name", "Ann Lee")
    page.fill("#email", "ann@example")  # no top-level domain
    page.fill("#timezone", "Europe/Londres")
    page.fill("#attr-key-0", "plan")
    page.fill("#attr-value-0", "gold")
    page.fill("#attr-key-1", "seats")
    page.fill("#attr-value-1", "many")
    page.select_option("#attr-type-1", "number")
    return go(page, "button[value=save]:not(.default-action)")


def upload_without_consent(page: Page, data: Path) -> int:
    """The import form with a topic but no consent source; the answer's status."""
    page.set_input_files("#file", str(data))
    page.select_option("#subscribe_topic", "news")
    page.select_option("#rank-email", "1")
    page.select_option("#rank-sms", "2")
    return go(page, "text=Upload and import")


def people_csv(count: int) -> str:
    rows = ["external_id,name,email,phone,attr.city"]
    for i in range(count):
        phone = f"+1415555{i:04d}" if i % 2 else ""
        rows.append(f"m-{i:04d},Member {i},m{i}@example.com,{phone},Lisbon")
    return "\n".join(rows) + "\n"


def test_a_marketer_imports_a_thousand_people_subscribing_them_to_a_topic(
    console: LiveHub,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    page = browser.new_page(viewport=DESKTOP)
    phone = browser.new_page(viewport=PHONE)
    sign_in(page, console.base)
    sign_in(phone, console.base)
    data = tmp_path / "webinar.csv"
    data.write_text(people_csv(PEOPLE))

    page.goto(f"{console.base}/console/contacts")
    assert go(page, "text=Import a file") == 200
    # No consent source: refused, named at its field, nothing imported.
    assert upload_without_consent(page, data) == 422
    assert page.locator(".error-summary a").get_attribute("href") == "#consent_source"
    assert "Where they agreed:" in page.inner_text("#consent_source-error")
    phone.goto(page.url)
    assert upload_without_consent(phone, data) == 422
    shoot(page, phone, "import-errors", reload=False)
    assert ok(console.api.get("/v1/contacts", headers=console.auth))["items"][3:] == []

    page.set_input_files("#file", str(data))  # a browser does not keep a file after a problem
    page.fill("#consent_source", "spring-webinar")
    page.fill("#consent_note", "Ticked 'send me news' when signing up")
    shoot(page, phone, "import-form")
    assert go(page, "text=Upload and import") == 200
    assert "/console/imports/" in page.url
    progress = page.locator("progress#import-progress")
    assert progress.count() == 1
    page.screenshot(path=SCREENSHOTS / "console-audience-import-progress-desktop.png")

    # The page's script updates the bar and counts in place, and loads the page once more
    # when the import has ended (so its outcome is announced): at most one navigation.
    loads: list[str] = []
    page.on("framenavigated", lambda frame: loads.append(frame.url))
    page.wait_for_selector("text=The import is done", timeout=120_000)
    assert len(loads) <= 1
    assert progress.get_attribute("value") == "100"
    assert page.inner_text("#count-rows") == "1,000"
    assert page.inner_text("#count-created") == "1,000"
    assert page.inner_text("#count-failed") == "0"
    assert page.inner_text("#count-subscribed") == "1,000"
    assert page.locator("text=Download the problems").count() == 0  # none to download
    shoot(page, phone, "import-done")

    both = ok(console.api.get("/v1/contacts/m-0001/subscriptions/news", headers=console.auth))
    assert both["channels"] == ["email", "sms"]
    assert (both["consent_source"], both["consent_actor"]) == ("spring-webinar", MIA)
    mail = ok(console.api.get("/v1/contacts/m-0002/subscriptions/news", headers=console.auth))
    assert mail["channels"] == ["email"]  # no phone
    consent = [
        e
        for e in timeline(console.api, console.auth, "m-0002")
        if e["type"] == "subscription.changed"
    ]
    assert [(e["source"], e["reason"], e["actor"]) for e in consent] == [
        ("spring-webinar", "Ticked 'send me news' when signing up", MIA)
    ]
    created = [
        e for e in timeline(console.api, console.auth, "m-0002") if e["type"] == "contact.created"
    ]
    assert [(e["actor_kind"], e["source"]) for e in created] == [("staff", "console.import")]

    page.goto(f"{console.base}/console/imports")
    assert "webinar.csv" in page.inner_text("table")
    shoot(page, phone, "imports")


def test_the_problems_of_a_file_with_bad_rows_download_as_csv(
    console: LiveHub,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    # Without JavaScript: the upload is a plain form, and the progress page reloads itself.
    page = browser.new_context(viewport=DESKTOP, java_script_enabled=False).new_page()
    phone = browser.new_context(viewport=PHONE, java_script_enabled=False).new_page()
    sign_in(page, console.base)
    sign_in(phone, console.base)
    data = tmp_path / "crm-export.ndjson"
    good = [f'{{"external_id": "g-{i}", "email": "g{i}@example.com"}}\n' for i in range(PEOPLE)]
    data.write_text(
        '{"external_id": "n-1", "email": "n1@example.com"}\n'
        '{"external_id": "n-2", "email": "not an address"}\n'
        '{"email": "n3@example.com"}\n'
        '{"external_id": "n-4", "=HYPERLINK(\\"http://evil.example\\")": 1}\n'
        '{"external_id": "n-5", "name": "Five", "timezone": "Europe/Lisbon"}\n' + "".join(good)
    )
    page.goto(f"{console.base}/console/imports/new")
    page.set_input_files("#file", str(data))
    assert go(page, "text=Upload and import") == 200
    page.wait_for_selector("text=The import is done", timeout=120_000)
    assert page.inner_text("#count-rows") == f"{PEOPLE + 5:,}"
    assert page.inner_text("#count-created") == f"{PEOPLE + 2:,}"
    assert page.inner_text("#count-failed") == "3"
    shown = page.locator("table.problems tbody tr")
    assert shown.count() == 3
    assert shown.nth(0).locator("td").all_inner_texts()[:2] == ["2", "email"]
    shoot(page, phone, "import-problems")

    with page.expect_download() as waiting:
        page.click("text=Download the problems (CSV)")
    download = waiting.value
    assert download.suggested_filename.endswith("-errors.csv")
    saved = tmp_path / "problems.csv"
    download.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_text())))
    assert rows[0] == ["line", "field", "message"]
    assert [(r[0], r[1]) for r in rows[1:]] == [
        ("2", "email"),
        ("3", "external_id"),
        ("4", '\'=HYPERLINK("http://evil.example")'),  # a formula made text for spreadsheets
    ]
    assert "not a valid e-mail address" in rows[1][2]
    assert ok(console.api.get("/v1/contacts/n-5", headers=console.auth))["name"] == "Five"
