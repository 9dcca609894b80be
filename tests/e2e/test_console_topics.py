"""The topic editor in headless Chromium: a marketer creates a topic, is told field by field
what is wrong with a bad form (a GOV.UK error summary linking to each field), fixes it,
then edits the topic; both changes are in the audit log. A viewer reads but cannot change.
Screenshots at desktop and phone width go to tests/e2e/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from hub.domain import StaffRole
from hub.services import audit, staff
from tests.dispatching import ok, topic
from tests.e2e.browser import DESKTOP, PHONE, SCREENSHOTS, browser  # noqa: F401 - a fixture
from tests.e2e.live import LiveHub, live_hub

PASSWORD = "correct horse battery staple"


@pytest.fixture
def console(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(sqlite_template, tmp_path) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, "mia@acme.example", PASSWORD, StaffRole.MARKETER)
            staff.create(session, "vic@acme.example", PASSWORD, StaffRole.VIEWER)
            session.commit()
        topic(hub.api, hub.auth, "news", name="Product news", allowed_channels=["email"])
        yield hub


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith("/console")


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"console-topics-{name}.png", full_page=True)


def fits(page: Page) -> bool:
    """No sideways scrolling of the page itself (a table may scroll inside its region)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def submit(page: Page) -> int:
    with page.expect_navigation() as navigation:
        page.click(".topic-editor form button[type=submit]")
    response = navigation.value
    assert response is not None
    return response.status


def test_a_marketer_creates_and_edits_a_topic(console: LiveHub, browser: Browser) -> None:  # noqa: F811
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, console.base, "mia@acme.example")
    page.click("nav >> text=Topics")
    assert "Product news" in page.inner_text("table")
    assert "marketing" in page.inner_text("table")
    shoot(page, "list")
    with page.expect_navigation():
        page.click("text=Create a topic")
    assert page.url.endswith("/console/topics/new")

    # Everything wrong at once: each problem is named in the summary and at its field.
    page.fill("#key", "Order Updates")
    page.uncheck("#allowed_channels")  # e-mail, ticked for a new topic
    page.check("#required")  # with the category still marketing
    page.fill("#cap_per_day", "lots")
    assert submit(page) == 422
    summary = page.locator(".error-summary")
    assert summary.is_visible()
    assert "There is a problem" in summary.inner_text()
    links = [
        page.get_attribute(f".error-summary li:nth-child({n}) a", "href")
        for n in range(1, summary.locator("li").count() + 1)
    ]
    assert links == ["#key", "#name", "#category", "#allowed_channels", "#cap_per_day"]
    assert page.inner_text("#name-error").endswith("Enter a name")
    assert "at least one channel" in page.inner_text("#allowed_channels-error")
    assert "cannot be required" in page.inner_text("#category-error")
    assert "whole number" in page.inner_text("#cap_per_day-error")
    assert page.get_attribute("#key", "aria-invalid") == "true"
    assert page.input_value("#key") == "Order Updates"  # shown again as typed
    assert page.input_value("#cap_per_day") == "lots"
    shoot(page, "errors")
    page.click(".error-summary a[href='#cap_per_day']")
    assert page.evaluate("document.activeElement.id") == "cap_per_day"
    page.set_viewport_size(PHONE)
    assert fits(page)
    shoot(page, "errors-phone")
    page.set_viewport_size(DESKTOP)

    page.fill("#key", "order-updates")
    page.fill("#name", "Order updates")
    page.fill("#description", "When your order ships and arrives.")
    page.check("#category-transactional")
    page.check("#allowed_channels-sms")
    page.check("#allowed_channels")
    page.check("#default_channels-sms")
    page.fill("#cap_per_day", "")
    assert submit(page) == 200
    assert page.url.endswith("/console/topics/order-updates/edit?saved=created")
    assert page.inner_text("[role=status]") == "Topic created."
    made = ok(console.api.get("/v1/topics/order-updates", headers=console.auth))
    assert made["category"] == "transactional"
    assert made["required"] is True
    assert made["allowed_channels"] == ["email", "sms"]
    assert made["default_channels"] == ["sms"]
    assert made["allowed_frequencies"] == ["immediate"]
    assert (made["cap_per_day"], made["public"]) == (None, True)
    assert made["description"] == "When your order ships and arrives."

    # Edit: the form shows what is stored; a change keeps the channels' order.
    assert page.is_checked("#category-transactional")
    assert page.is_checked("#default_channels-sms")
    assert not page.is_checked("#default_channels")
    page.fill("#name", "Your orders")
    page.uncheck("#required")
    page.check("#category")  # marketing
    page.check("#allowed_channels-voice")
    page.check("#allowed_frequencies-daily")
    page.fill("#cap_per_week", "5")
    page.check("#cap_action-drop")
    page.check("#bypass_quiet_hours")
    assert submit(page) == 200
    assert page.inner_text("[role=status]") == "Changes saved."
    changed = ok(console.api.get("/v1/topics/order-updates", headers=console.auth))
    assert changed["name"] == "Your orders"
    assert (changed["category"], changed["required"]) == ("marketing", False)
    assert changed["allowed_channels"] == ["email", "sms", "voice"]
    assert changed["allowed_frequencies"] == ["immediate", "daily"]
    assert (changed["cap_per_week"], changed["cap_action"]) == (5, "drop")
    assert changed["bypass_quiet_hours"] is True
    shoot(page, "edit")
    page.set_viewport_size(PHONE)
    assert fits(page)
    shoot(page, "edit-phone")
    page.goto(f"{console.base}/console/topics")
    assert fits(page)
    shoot(page, "list-phone")

    with console.runtime.reads() as session:
        entries = audit.page(
            session, before_id=None, limit=10, resource=audit.Resource.TOPIC, key="order-updates"
        )
        logged = [(e.action, e.actor_kind, e.actor, e.before, e.after) for e in entries]
    assert [(a, k, who) for a, k, who, _, _ in logged] == [
        ("updated", "staff", "mia@acme.example"),
        ("created", "staff", "mia@acme.example"),
    ]
    before, after = logged[0][3] or {}, logged[0][4] or {}
    assert (before["category"], after["category"]) == ("transactional", "marketing")
    assert (before["name"], after["name"]) == ("Order updates", "Your orders")
    assert "description" not in after  # only what changed
    page.close()


def test_a_key_in_use_is_refused_on_its_field(console: LiveHub, browser: Browser) -> None:  # noqa: F811
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, console.base, "mia@acme.example")
    page.goto(f"{console.base}/console/topics/new")
    page.fill("#key", "news")
    page.fill("#name", "Another news")
    assert submit(page) == 422
    assert page.get_attribute(".error-summary a", "href") == "#key"
    assert "already exists" in page.inner_text("#key-error")
    kept = ok(console.api.get("/v1/topics/news", headers=console.auth))
    assert kept["name"] == "Product news"
    page.close()


def test_a_viewer_reads_topics_but_cannot_change_them(console: LiveHub, browser: Browser) -> None:  # noqa: F811
    page = browser.new_page(viewport=PHONE)
    sign_in(page, console.base, "vic@acme.example")
    page.goto(f"{console.base}/console/topics")
    assert page.locator("text=Create a topic").count() == 0
    with page.expect_navigation():
        page.click("table a:text-is('news')")
    facts = page.inner_text("dl.summary")
    assert "Product news" in facts
    assert "Marketing: the legal hours" in facts
    assert page.locator(".topic-editor form").count() == 0  # nothing to change, nothing to post
    assert fits(page)
    shoot(page, "viewer-phone")
    csrf = page.get_attribute("input[name=csrf]", "value") or ""
    form: dict[str, str | float | bool] = {
        "csrf": csrf,
        "name": "Hacked",
        "allowed_channels": "email",
        "audience": "all",
    }
    refused = page.request.post(f"{console.base}/console/topics/news/edit", form=form)
    assert refused.status == 403
    assert page.goto(f"{console.base}/console/topics/new").status == 403  # type: ignore[union-attr]
    created = page.request.post(f"{console.base}/console/topics/new", form=form | {"key": "x"})
    assert created.status == 403
    assert ok(console.api.get("/v1/topics/news", headers=console.auth))["name"] == "Product news"
    assert console.api.get("/v1/topics/x", headers=console.auth).status_code == 404
    page.close()
