"""Engagement in headless Chromium: an e-mail goes through the SMTP peer, one person's mail
client loads its pixel and they follow a link, another's privacy proxy fetches the pixel;
a viewer then reads the notification's page (people first, "all, including machines" beside
them) and a known campaign's report (clicks per link, the opens-and-clicks chart). Both fit a
390 px phone without sideways scrolling and have no serious axe finding; screenshots at
desktop and phone width go to tests/e2e/screenshots/."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import update

from hub.db.models import Campaign
from hub.domain import StaffRole
from hub.services import staff
from tests import engaging, reporting
from tests.dispatching import ok, person, settled, topic, wait_for
from tests.e2e.browser import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    browser,  # noqa: F401 - a fixture
    serious_violations,
    wider,
)
from tests.e2e.live import LiveHub, live_hub

PASSWORD = "correct horse battery staple"
VIC = "vic@acme.example"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
OFFER = "https://shop.example.com/winter"
CONTENT = {
    "": {
        "email_subject": "Winter offers",
        # A picture of its own: short mail without one carries no pixel (spam filters).
        "email_html": f'<img src="https://shop.example.com/winter.png" alt="Winter offers">'
        f'<p>Hello,</p><p><a href="{OFFER}">See the offer</a>.</p>',
        "email_text": f"Hello, see {OFFER}",
    }
}
# The known campaign's morning: its first e-mail left at 07:30 UTC.
MORNING = dt.datetime(2026, 3, 2, 10, 20, tzinfo=dt.UTC)


@pytest.fixture
def console(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[LiveHub, reporting.Mixed]]:
    settings = {"tracking_settle_seconds": 0.3, "tracking_too_soon_seconds": 0}
    with live_hub(sqlite_template, tmp_path, **settings) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, VIC, PASSWORD, StaffRole.VIEWER)
            session.commit()
        with hub.runtime.engine.begin() as db:
            known = engaging.known(db, now=MORNING)
            # Done, as a campaign of that morning would be: a live one's report reloads
            # itself (a meta refresh), which axe rightly reports on its own.
            done = update(Campaign).where(Campaign.id == known.campaign_id)
            db.execute(done.values(state="done"))
        yield hub, known


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#email", VIC)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def look(page: Page, phone: Page, name: str) -> None:
    """The page at desktop and phone width: screenshots, no serious axe finding, and at
    390 px nothing reaches past the window's edge."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"console-engagement-{name}-desktop.png", full_page=True)
    assert serious_violations(page) == [], name
    phone.goto(page.url)
    phone.screenshot(path=SCREENSHOTS / f"console-engagement-{name}-phone.png", full_page=True)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{name} is {width} px wide at 390 px: {wider(phone)}"
    assert serious_violations(phone) == [], name


def headline(page: Page) -> dict[str, str]:
    keys = ("delivered", "opened", "opened-all", "clicked", "clicked-all", "unsubscribed")
    return {key: " ".join(page.inner_text(f"#eng-{key}").split()) for key in keys}


def mail_and_engage(hub: LiveHub) -> int:
    """Ann and Bob get the e-mail; Ann's mail client shows its picture and she follows the
    link; Bob's pictures are fetched by Gmail's proxy. The notification's id."""
    topic(hub.api, hub.auth, "offers", category="marketing")
    for name in ("ann", "bob"):
        person(
            hub.api, hub.auth, name, email=f"{name}@example.com", subscribe={"offers": ["email"]}
        )
    body = {"topic": "offers", "content": CONTENT, "recipients": ["ann", "bob"]}
    sent = ok(hub.api.post("/v1/notifications", json=body, headers=hub.auth), 202)
    settled(hub.api, hub.auth, sent["id"])
    mails = {m.rcpt_tos[0]: m.message for m in hub.smtp.wait_for(2)}

    def tracked(address: str) -> tuple[str, str]:
        html = mails[address].get_body(("html",)).get_content()
        (pixel,) = re.findall(r'<img src="([^"]+/t/o/[^"]+)"', html)
        link = next(h for h in re.findall(r'href="([^"]+)"', html) if "/t/c/" in h)
        return pixel, link

    ann_pixel, ann_link = tracked("ann@example.com")
    bob_pixel, _ = tracked("bob@example.com")
    with httpx.Client(headers={"User-Agent": CHROME}) as mail_app:
        assert mail_app.get(ann_pixel).status_code == 200
        answer = mail_app.get(ann_link)
        assert (answer.status_code, answer.headers["location"]) == (302, OFFER)
        assert mail_app.get(bob_pixel, headers={"User-Agent": GMAIL_PROXY}).status_code == 200

    def recorded() -> dict[str, object] | None:
        url = f"/v1/notifications/{sent['id']}"
        figures: dict[str, object] = ok(hub.api.get(url, headers=hub.auth))["engagement"]
        return figures if figures["opened_all"] == 2 and figures["clicked"] == 1 else None

    wait_for("the opens and the click to be recorded", recorded, timeout=15)
    return int(sent["id"])


def test_a_viewer_reads_what_people_did_apart_from_machines(
    console: tuple[LiveHub, reporting.Mixed],
    browser: Browser,  # noqa: F811
) -> None:
    hub, known = console
    notification_id = mail_and_engage(hub)
    page = browser.new_page(viewport=DESKTOP)
    phone = browser.new_page(viewport=PHONE)
    sign_in(page, hub.base)
    sign_in(phone, hub.base)

    page.goto(f"{hub.base}/console/notifications/{notification_id}")
    assert headline(page) == {
        "delivered": "2",
        "opened": "1 50.0%",  # Ann; Bob's proxy is not Bob
        "opened-all": "all, including machines: 2",
        "clicked": "1 50.0%",
        "clicked-all": "all, including machines: 1",
        "unsubscribed": "0",
    }
    assert "privacy proxy" in page.inner_text("ul.machines")
    assert page.locator("table.links tbody tr").all_inner_texts()[0].split("\t")[1] == OFFER
    # All within the first hour: one step is a table, not a chart.
    assert page.locator("#engagement-chart").count() == 0
    first_hour = page.locator("section.engagement details.figures[open] tbody tr")
    assert first_hour.all_inner_texts()[0].split("\t")[1:] == ["1", "1"]
    look(page, phone, "notification")

    page.goto(f"{hub.base}/console/campaigns/{known.campaign_id}/report")
    assert headline(page)["opened"] == "3 50.0%"
    assert page.is_visible("#opened-means")
    rows = page.locator("table.links tbody tr").all_inner_texts()
    assert [r.split("\t")[2:] for r in rows] == [["1", "2"], ["1", "2"]]
    chart = page.locator("#engagement-chart")
    box = chart.bounding_box()
    assert box is not None
    assert box["height"] > 200
    opens = page.locator("#engagement-chart polyline[data-series=opens]")
    assert opens.get_attribute("data-values") == "0 1 2 0 0"
    page.click("section.engagement details.figures summary")
    table = page.locator("section.engagement details.figures table tbody tr")
    assert table.first.inner_text().split("\t") == ["02 Mar 08:00", "1", "1"]
    look(page, phone, "campaign-report")
    phone_chart = phone.locator("#engagement-chart").bounding_box()
    assert phone_chart is not None
    assert phone_chart["x"] + phone_chart["width"] <= 390
