"""Issue 21, item 4, in headless Chromium: the manager's view of the console.

An admin with no employee record is told so and led to their staff user page, where a client's
id is refused naming the field and their own employee id is taken; My clients then lists
their clients (and, filtered, their teams' clients) with latest activity, refusals and
failures; the per-manager report counts every manager's clients with totals and a CSV. A
viewer with no record reads why, and gets the normal not-allowed page for the report; a
marketer whose employee owns no one sees the empty state. Each page is checked with axe and
photographed at 1280 and 390 px (tests/e2e/screenshots/my_clients*.png, managers*.png).
"""

# The timeline's words use typographic quotation marks.
# ruff: noqa: RUF001

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from hub.channels.base import InboundText
from hub.db.models import Contact
from hub.domain import ActorKind, EventType, StaffRole
from hub.services import inbound, staff, timeline
from hub.services.actor import Actor
from tests.dispatching import ok, person, topic
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
ADMIN = "ada@acme.example"
VIEWER = "vic@acme.example"
MARKETER = "mia@acme.example"
SYSTEM = Actor(kind=ActorKind.SYSTEM, name="test", source="test")
# Who owns whom: Ann's three clients, Bob's one. Carla and Eve are in the north team with Ann.
CLIENTS: tuple[tuple[str, str, str, list[str], str], ...] = (
    ("c-1", "Carla Diaz", "e-ann", ["north"], "+447946000001"),
    ("c-2", "Dev Patel", "e-ann", [], "+447946000002"),
    ("c-3", "Eve Okafor", "e-bob", ["north"], "+447946000003"),
    ("c-5", "Gus Long-Named-Client Fitzgerald-Worthington", "e-ann", [], "+447946000005"),
)


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(sqlite_template, tmp_path) as hub:
        api, auth = hub.api, hub.auth
        for key, name in (("north", "North"), ("south", "South")):
            ok(api.put(f"/v1/teams/{key}", json={"name": name}, headers=auth))
        topic(api, auth, "offers", name="Offers", allowed_channels=["email", "sms"])
        person(api, auth, "e-ann", kind="employee", name="Ann Lee", teams=["north"])
        person(api, auth, "e-bob", kind="employee", name="Bob Ng", teams=["south"])
        person(api, auth, "e-cat", kind="employee", name="Cat Roy", teams=["south"])
        for external_id, name, owner, teams, phone in CLIENTS:
            person(
                api,
                auth,
                external_id,
                name=name,
                email=f"{external_id}@example.com",
                phone=phone,
                owner=owner,
                teams=teams,
                subscribe={"offers": ["email"]},
            )
        # Carla leaves Offers and texts STOP (two refusals); Eve replies; Dev's mail bounces.
        ok(api.delete("/v1/contacts/c-1/subscriptions/offers", headers=auth))
        with hub.runtime.sessions() as session:
            for sender, body in (("+447946000001", "STOP"), ("+447946000003", "Call me")):
                said = InboundText(provider="twilio", sender=sender, body=body, provider_id=None)
                inbound.receive(session, said, hasher=hub.runtime.hasher)
            dev = session.query(Contact).filter(Contact.external_id == "c-2").one()
            timeline.record(
                session,
                contact_id=dev.id,
                type=EventType.DELIVERY_BOUNCED,
                actor=SYSTEM,
                channel=None,
                reason="hard_bounce",
                changes={"address": "c-2@example.com"},
            )
            staff.create(session, ADMIN, PASSWORD, StaffRole.ADMIN)
            staff.create(session, VIEWER, PASSWORD, StaffRole.VIEWER)
            staff.create(session, MARKETER, PASSWORD, StaffRole.MARKETER)
            staff.link_employee(session, MARKETER, "e-cat", hasher=hub.runtime.hasher)
            session.commit()
        yield hub


def sign_in(chromium: Browser, site: LiveHub, email: str, viewport: dict[str, int]) -> Page:
    page = chromium.new_context(viewport=viewport).new_page()  # type: ignore[arg-type]
    page.goto(f"{site.base}/console/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    return page


def shoot(page: Page, name: str) -> None:
    """Photographed, checked with axe; at phone width nothing reaches past the window."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    assert serious_violations(page) == [], name
    if page.viewport_size and page.viewport_size["width"] <= PHONE["width"]:
        assert wider(page) == [], name


def both_widths(page: Page, name: str) -> None:
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    shoot(page, f"{name}-desktop")
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    shoot(page, f"{name}-phone")
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]


def go(page: Page, action: str) -> int:
    with page.expect_navigation() as navigation:
        page.click(action)
    answer = navigation.value
    assert answer is not None
    return answer.status


def rows_of(page: Page, table: str) -> list[dict[str, str]]:
    """The table's body rows as {header: cell text}."""
    headers = [h.inner_text() for h in page.locator(f"table.{table} thead th").all()]
    found = []
    for row in page.locator(f"table.{table} tbody tr").all():
        cells = [c.inner_text().strip() for c in row.locator("td").all()]
        found.append(dict(zip(headers, cells, strict=True)))
    return found


def test_an_admin_links_their_record_and_reads_their_clients_and_every_managers(
    site: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = sign_in(browser, site, ADMIN, DESKTOP)
    assert go(page, "nav[aria-label=Console] >> text=My clients") == 200
    assert page.get_attribute("nav[aria-label=Console] >> text=My clients", "aria-current")
    assert "Your account has no employee record" in page.inner_text("main")
    shoot(page, "my_clients-unlinked-desktop")

    assert go(page, "text=Link your account to your employee record") == 200
    page.fill("#employee", "c-1")
    assert go(page, "text=Save the employee record") == 422
    summary = page.locator(".error-summary a")
    assert summary.get_attribute("href") == "#employee"
    assert summary.inner_text() == "Employee record: 'c-1' is a client, not an employee"
    assert page.get_attribute("#employee", "aria-invalid") == "true"
    both_widths(page, "my_clients-link-error")
    page.fill("#employee", "e-ann")
    assert go(page, "text=Save the employee record") == 200
    assert "Employee record saved" in page.inner_text("[role=status]")
    assert "Ann Lee (e-ann)" in page.inner_text(".facts")

    page.goto(f"{site.base}/console/clients")
    rows = rows_of(page, "clients")
    mine = [c for c in CLIENTS if c[2] == "e-ann"]
    assert [r["Name"] for r in rows] == [c[1] for c in reversed(mine)]  # newest first
    carla = next(r for r in rows if r["External id"] == "c-1")
    assert (carla["Teams"], carla["Refusals (30 days)"], carla["Failures (30 days)"]) == (
        "North",
        "2",
        "0",
    )
    assert carla["Latest activity"].startswith("Replied by SMS: ‘STOP’")
    dev = next(r for r in rows if r["External id"] == "c-2")
    assert (dev["Refusals (30 days)"], dev["Failures (30 days)"]) == ("0", "1")
    assert page.get_attribute("tr[data-client=c-1] a", "href") == "/console/contacts/c-1"
    both_widths(page, "my_clients")

    page.select_option("#whose", "teams")
    page.select_option("#days", "7")
    assert go(page, "form.filters button") == 200
    assert "whose=teams" in page.url
    assert [r["External id"] for r in rows_of(page, "clients")] == ["c-3", "c-1"]
    assert "Refusals (7 days)" in page.inner_text("table.clients thead")
    shoot(page, "my_clients-teams-desktop")

    assert go(page, "text=clients per manager") == 200
    report = rows_of(page, "by-manager")
    assert [r["Manager"] for r in report] == ["Ann Lee e-ann", "Bob Ng e-bob"]
    ann, bob = report
    assert (ann["Clients"], ann["Refusals"], ann["Failures"], ann["Replies"]) == (
        "3",
        "2",
        "1",
        "0",
    )
    assert (bob["Clients"], bob["Refusals"], bob["Replies"]) == ("1", "0", "1")
    total = page.locator("table.by-manager tfoot tr")
    assert total.locator("td.clients").inner_text() == "4"
    assert page.inner_text("#total-replies") == "1"
    both_widths(page, "managers")

    page.select_option("#days", "90")
    assert go(page, "form.filters button") == 200
    link = page.get_attribute("text=Download as CSV", "href")
    assert link == "/console/clients/managers.csv?days=90"
    download = page.request.get(f"{site.base}{link}")
    assert download.ok
    table = list(csv.DictReader(io.StringIO(download.text())))
    assert [(r["external_id"], r["clients"], r["refusals"]) for r in table] == [
        ("e-ann", "3", "2"),
        ("e-bob", "1", "0"),
        ("", "4", "2"),
    ]


def test_a_viewer_without_a_record_is_told_why_and_may_not_read_the_report(
    site: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = sign_in(browser, site, VIEWER, PHONE)
    page.goto(f"{site.base}/console/clients")
    main = page.inner_text("main")
    assert "Your account has no employee record" in main
    assert "Ask an admin to link it" in main
    assert page.locator("main a[href*='/console/admin/']").count() == 0
    assert page.locator("main a[href='/console/clients/managers']").count() == 0
    shoot(page, "my_clients-viewer-phone")
    answer = page.goto(f"{site.base}/console/clients/managers")
    assert answer is not None
    assert answer.status == 403
    assert "it needs marketer" in page.inner_text("main")
    csv_answer = page.request.get(f"{site.base}/console/clients/managers.csv")
    assert csv_answer.status == 403


def test_an_employee_who_owns_no_one_sees_how_clients_become_theirs(
    site: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = sign_in(browser, site, MARKETER, PHONE)
    page.goto(f"{site.base}/console/clients")
    main = page.inner_text("main")
    assert "No clients yet" in main
    assert re.search(r"Set owner to e-cat on the client", main)
    shoot(page, "my_clients-empty-phone")
    page.select_option("#whose", "teams")
    assert go(page, "form.filters button") == 200
    # Cat's team (south) has no client but Bob's own, and Bob's c-3 is in north: none.
    assert "None of your teams has a client" in page.inner_text("main")
