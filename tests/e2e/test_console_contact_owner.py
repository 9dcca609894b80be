"""Issue 21, item 1, in headless Chromium: a marketer sets a client's owner and teams in the
console's contact form; the client's page shows them, the owner's page counts the client and
its timeline says "Became the owner of client 'c-cy'" with the client linked back; a bad owner
is refused in the error summary, naming the field; the contact list narrows to the owner's
clients. Each page is checked with axe and photographed at 1280 and 390 px
(tests/e2e/screenshots/console_contact_owner*.png)."""

# The timeline's words use typographic quotation marks.
# ruff: noqa: RUF001

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from hub.domain import StaffRole
from hub.services import staff
from tests.dispatching import ok
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
MARKETER = "mia@acme.example"
NAME = "console_contact_owner"


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(sqlite_template, tmp_path) as hub:
        api, auth = hub.api, hub.auth
        for key, name in (("north", "North"), ("key-accounts", "Key accounts")):
            ok(api.put(f"/v1/teams/{key}", json={"name": name}, headers=auth))
        for external_id, kind, name in (
            ("e-ann", "employee", "Ann Lee"),
            ("e-ben", "employee", "Ben Ode"),
            ("c-cy", "client", "Cy Young-Fitzgerald-Worthington"),
        ):
            body = {"kind": kind, "name": name, "email": f"{external_id}@example.com"}
            ok(api.put(f"/v1/contacts/{external_id}", json=body, headers=auth))
        with hub.runtime.sessions() as session:
            staff.create(session, MARKETER, PASSWORD, StaffRole.MARKETER)
            session.commit()
        yield hub


def sign_in(chromium: Browser, site: LiveHub) -> Page:
    page = chromium.new_context(viewport=DESKTOP).new_page()  # type: ignore[arg-type]
    page.goto(f"{site.base}/console/login")
    page.fill("#email", MARKETER)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    return page


def shoot(page: Page, name: str) -> None:
    """Photographed at both widths and checked with axe; at 390 px the page does not scroll
    sideways."""
    SCREENSHOTS.mkdir(exist_ok=True)
    for viewport, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(viewport)  # type: ignore[arg-type]
        page.screenshot(path=SCREENSHOTS / f"{NAME}-{name}-{suffix}.png", full_page=True)
        assert serious_violations(page) == [], (name, suffix)
        if viewport is PHONE:  # a wide table scrolls in its own region; the page does not
            fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            assert fits, f"{name} scrolls sideways at 390 px: {wider(page)}"
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]


def go(page: Page, action: str) -> int:
    with page.expect_navigation() as navigation:
        page.click(action)
    answer = navigation.value
    assert answer is not None
    return answer.status


def test_a_marketer_gives_a_client_an_owner_and_teams_and_both_pages_show_it(
    site: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = sign_in(browser, site)
    page.goto(f"{site.base}/console/contacts/c-cy")
    assert page.inner_text(".facts dd.owner") == "no one"
    assert go(page, "text=Change details") == 200

    # A bad owner first: refused in the summary, naming the field, with the message beside it.
    page.fill("#owner", "c-cy")
    assert go(page, "button:text('Save changes')") == 422
    summary = page.locator(".error-summary a")
    assert summary.get_attribute("href") == "#owner"
    assert summary.inner_text() == "Owner: a contact cannot be their own owner"
    assert page.inner_text("#owner-error").endswith("Owner: a contact cannot be their own owner")
    assert page.input_value("#owner") == "c-cy"
    shoot(page, "error")

    # The employees are suggested; the teams are checkboxes.
    suggested = page.locator("datalist#employees option")
    assert [o.get_attribute("value") for o in suggested.all()] == ["e-ann", "e-ben"]
    page.fill("#owner", "e-ann")
    page.get_by_label("North").check()
    page.get_by_label("Key accounts").check()
    shoot(page, "form")
    assert go(page, "button:text('Save changes')") == 200
    assert "Their details were saved" in page.inner_text("[role=status]")

    # The client's page: the owner, linked, and the teams, each linked to its members.
    assert page.inner_text(".facts dd.owner") == "Ann Lee (e-ann)"
    assert page.inner_text(".facts dd.teams") == "Key accounts, North"
    assert (
        page.get_attribute(".facts dd.teams a >> nth=1", "href") == "/console/contacts?team=north"
    )
    changed = page.locator("table.timeline > tbody > tr").first
    assert changed.get_attribute("data-kind") == "contact.updated"
    assert changed.locator("td.actor").inner_text().startswith(f"staff: {MARKETER}")
    shoot(page, "client")

    # The owner's page: one client, and the assignment on the timeline with the client linked.
    assert go(page, ".facts dd.owner a") == 200
    assert page.url.endswith("/console/contacts/e-ann")
    assert page.inner_text(".facts dd.owns") == "1 client"
    assigned = page.locator("table.timeline > tbody > tr").first
    assert assigned.get_attribute("data-kind") == "client.assigned"
    what = assigned.locator("td.what")
    assert what.inner_text().startswith(
        f"Became the owner of client ‘c-cy’ in the console by {MARKETER}"
    )
    assert what.locator("a").get_attribute("href") == "/console/contacts/c-cy"
    assert assigned.locator("td.actor").inner_text().startswith(f"staff: {MARKETER}")
    shoot(page, "employee")

    # Her clients, from the count: the list narrowed to them.
    assert go(page, ".facts dd.owns a") == 200
    assert page.inner_text("main h2") == "Clients of Ann Lee (e-ann)"
    rows = page.locator("main table tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("a").inner_text() == "c-cy"
    assert page.locator("details.narrow").get_attribute("open") is not None
    shoot(page, "list")

    # And back to the client from her timeline's link.
    page.go_back()
    assert go(page, "table.timeline td.what a") == 200
    assert page.url.endswith("/console/contacts/c-cy")


def test_with_no_teams_the_form_says_how_to_make_them(
    site: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    for key in ("north", "key-accounts"):
        assert site.api.delete(f"/v1/teams/{key}", headers=site.auth).status_code == 204
    page = sign_in(browser, site)
    page.goto(f"{site.base}/console/contacts/new")
    assert "There are no teams yet" in page.inner_text("main")
    assert page.locator("input[name=teams]").count() == 0
    page.fill("#external_id", "c-new")
    page.check("#kind-employee")
    page.fill("#owner", "e-ann")  # an employee has no owner
    assert go(page, "button:text('Add the person')") == 422
    assert page.locator(".error-summary a").inner_text() == (
        "Owner: only a client has an owner; put employees in teams"
    )
    shoot(page, "no-teams")
    page.fill("#owner", "")
    assert go(page, "button:text('Add the person')") == 200
    assert page.url.endswith("/console/contacts/c-new?done=created")
    assert page.inner_text(".facts dd.owns") == "none"
