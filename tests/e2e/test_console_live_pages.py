"""A console page that shows something still moving keeps itself up to date in place, can be
paused, and carries no timed reload for axe (or a screen reader) to trip on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from sqlalchemy import update

from hub.db.models import Campaign
from hub.domain import StaffRole
from hub.services import staff
from tests import engaging
from tests.e2e.browser import DESKTOP, browser, serious_violations  # noqa: F401 - a fixture
from tests.e2e.live import LiveHub, live_hub

PASSWORD = "correct horse battery staple"
VIC = "vic@acme.example"
MORNING = dt.datetime(2026, 3, 2, 10, 20, tzinfo=dt.UTC)


@pytest.fixture
def sending(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[LiveHub, int]]:
    with live_hub(sqlite_template, tmp_path) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, VIC, PASSWORD, StaffRole.VIEWER)
            session.commit()
        with hub.runtime.engine.begin() as db:
            known = engaging.known(db, now=MORNING)
            live = update(Campaign).where(Campaign.id == known.campaign_id)
            db.execute(live.values(state="sending"))
        yield hub, known.campaign_id


def test_a_sending_campaign_updates_in_place_and_can_be_paused(
    sending: tuple[LiveHub, int],
    browser: Browser,  # noqa: F811
) -> None:
    hub, campaign_id = sending
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{hub.base}/console/login")
    page.fill("#email", VIC)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    for path in (f"/console/campaigns/{campaign_id}", f"/console/campaigns/{campaign_id}/report"):
        page.goto(hub.base + path)
        assert page.locator("meta[http-equiv=refresh]").count() == 0  # only in <noscript>
        assert page.locator("main[data-refresh]").count() == 1
        pause = page.locator("button:has-text('Pause live updates')")
        assert pause.is_visible()
        assert serious_violations(page) == [], path

    page.goto(f"{hub.base}/console/campaigns/{campaign_id}")
    assert page.inner_text(".state") == "sending"
    page.click("button:has-text('Pause live updates')")
    resume = page.locator("button:has-text('Resume live updates')")
    assert resume.get_attribute("aria-pressed") == "true"
    with hub.runtime.engine.begin() as db:
        db.execute(update(Campaign).where(Campaign.id == campaign_id).values(state="done"))
    page.wait_for_timeout(3_000)  # paused: the page still says what it said
    assert page.inner_text(".state") == "sending"
    resume.click()
    page.wait_for_selector(".state-done", timeout=10_000)  # in place: no navigation
    assert page.locator("p.live").count() == 0  # it stopped moving: no more updates
