"""An A/B campaign in headless Chromium, without JavaScript: a marketer fills two variant rows
whose shares do not add up and is told which row, corrects them, turns tracking on, sees the
variants and per-variant audience in the dry run, sends variant B to themselves, schedules it,
and reads the comparison once people have clicked. Pages at 1280 and 390 px go to
tests/e2e/screenshots/, checked with axe-core and for sideways scrolling."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import insert, select

from hub.db.base import utcnow
from hub.db.models import Delivery, Engagement, Notification, Topic
from hub.domain import AgentClass, EngagementKind, StaffRole
from hub.services import staff
from tests import seeding
from tests.dispatching import daytime_zone, ok, topic, wait_for
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
PEOPLE = 120


def template(arm: str) -> dict[str, object]:
    subject = f"{arm}: spring for {{{{ contact.name }}}}"
    return {"variants": {"": {"email_subject": subject, "email_text": "Spring sale."}}}


@pytest.fixture
def console(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(sqlite_template, tmp_path) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, MARKETER, PASSWORD, StaffRole.MARKETER)
            session.commit()
        topic(hub.api, hub.auth, "offers", name="Offers", allowed_channels=["email"])
        for arm in ("a", "b"):
            ok(
                hub.api.put(
                    f"/v1/templates/spring-{arm}", json=template(arm.upper()), headers=hub.auth
                )
            )
        with hub.runtime.engine.begin() as db:
            topic_id = db.execute(select(Topic.id).where(Topic.key == "offers")).scalar_one()
            zone = daytime_zone()
            rows = [
                {"id": i, "external_id": f"c{i}", "name": f"Client {i}",
                 "email": f"c{i}@example.com", "timezone": zone, "channels": ["email"]}
                for i in range(1, PEOPLE + 1)
            ]  # fmt: skip
            seeding.subscribers(db, topic_id, rows, now=utcnow())
        yield hub


def click(page: Page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def check(page: Page, browser: Browser, name: str, *, post: str | None = None) -> None:  # noqa: F811
    """Both widths: a phone never scrolls sideways; axe finds nothing serious. `post`: the
    button that brings the phone to the same page (one that answers a POST)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"ab-{name}.png", full_page=True)
    phone = browser.new_page(viewport=PHONE)
    phone.context.add_cookies(page.context.cookies())
    if post is None:
        phone.goto(page.url)
    else:
        fill(phone, page.url, shares=("60", "30"))
        click(phone, post)
    phone.screenshot(path=SCREENSHOTS / f"ab-{name}-phone.png", full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
    for shown in (page, phone):
        assert serious_violations(shown) == [], name
    phone.close()


def fill(page: Page, url: str, *, shares: tuple[str, str]) -> None:
    page.goto(url)
    page.fill("#name", "Spring test")
    page.select_option("#topic", "offers")
    page.select_option("#v1-template", "spring-a")
    page.select_option("#v2-template", "spring-b")
    page.fill("#v1-share", shares[0])
    page.fill("#v2-share", shares[1])
    page.check("#tracking-on")


def test_a_marketer_splits_a_campaign_tests_a_variant_and_reads_the_comparison(
    console: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{console.base}/console/login")
    page.fill("#email", MARKETER)
    page.fill("#password", PASSWORD)
    click(page, "button[type=submit]")

    new = f"{console.base}/console/campaigns/new"
    fill(page, new, shares=("60", "30"))
    assert "As the topic says: Offers tracks them." in page.inner_text("#tracking-hint")
    click(page, "text=Create draft")
    refused = page.inner_text(".alert[role=alert]")
    assert "Variant B's share: the shares add up to 90; they must add up to 100" in refused
    assert page.input_value("#v2-share") == "30"  # what was typed comes back
    check(page, browser, "refused", post="text=Create draft")

    fill(page, new, shares=("50", "50"))
    click(page, "text=Create draft")
    facts = page.inner_text(".facts")
    assert "A: spring-a (50 %), B: spring-b (50 %)" in facts
    assert "the audience split by share" in facts
    assert "Tracking\nopens and clicks tracked" in facts

    click(page, "button:has-text('Dry-run')")
    split = page.inner_text(".dry-arms")
    counts = [int(part.split()[-1].rstrip(".,")) for part in split.split(": ")[1].split(", ")]
    assert sum(counts) == PEOPLE
    renders = page.inner_text(".renders")
    for name, count in zip("AB", counts, strict=True):  # each tried on its own people
        assert f"variant {name} · no language · email ({count} people, e.g. c" in renders
    check(page, browser, "dry-run")

    here = page.url.split("?")[0]
    page.goto(here)
    click(page, "button:has-text('Send variant B to me')")
    assert "?test=" in page.url
    (mail,) = console.smtp.wait_for(1)
    assert mail.rcpt_tos == (MARKETER,)
    assert mail.message["Subject"].startswith("B: spring for Client ")

    click(page, "button:has-text('Schedule')")
    campaign_id = int(here.rsplit("/", 1)[1])

    def finished() -> bool:
        page.goto(here)
        return page.inner_text(".state") == "done"

    wait_for("the campaign to be done", finished, timeout=60)
    with console.runtime.reads() as session:
        sent = session.execute(
            select(Delivery.id, Delivery.notification_id, Delivery.contact_id, Notification.arm)
            .join(Notification, Notification.id == Delivery.notification_id)
            .where(Notification.campaign_id == campaign_id)
        ).all()
    clicked = [row for row in sent if row.arm == "A"][:6] + [row for row in sent if row.arm == "B"][
        :22
    ]
    with console.runtime.engine.begin() as db:  # as the recorder keeps people's clicks
        db.execute(
            insert(Engagement),
            [
                {"delivery_id": row.id, "notification_id": row.notification_id,
                 "contact_id": row.contact_id, "kind": EngagementKind.CLICK, "link_index": 1,
                 "url": "https://shop.example/spring", "machine": False, "machine_reason": None,
                 "agent": AgentClass.BROWSER, "occurred_at": utcnow()}
                for row in clicked
            ],
        )  # fmt: skip
    page.goto(here)
    compared = page.inner_text(".ab-results")
    assert "B's click rate is higher (p = " in compared
    assert "Too few" not in compared
    assert page.inner_text(".ab-results tr.arm-B td >> nth=2").startswith("22 (")
    check(page, browser, "compared")
