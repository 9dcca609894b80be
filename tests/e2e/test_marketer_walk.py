"""The marketer's walk (issue 17), one test in headless Chromium with no API key in use:
a marketer signs in; creates a marketing topic; imports 1,000 people subscribing them on
e-mail with their consent; builds a saved segment "plan is gold OR city is Berlin" watching
its count follow the form; writes an English and a Russian template and previews them; makes
a campaign whose data lacks the template's `offer`, sees the dry run say so in plain words
with the part and line, and Schedule refused; follows the error's link to the campaign's data
and adds the offer there; sees the dry run clean and ready; sends a test to themselves, which
renders as the first person of the audience (so it passes where the dry run passed) and says
whose message it is and that the mail server accepted it; schedules; watches it reach done;
reads the report, what Delivered means there, and follows it to the run's notification; and
finds one person's delivery on their timeline.

The campaign goes by e-mail only (the import subscribes people on e-mail), so the legal
window for marketing SMS never holds it, whatever the hour the test runs at. Each step is
timed (a line per step on stdout, seen with `pytest -s`) and photographed at 1280 px, and
the import, the preview, the dry run and the report at 390 px too, where the page must not
scroll sideways: tests/e2e/screenshots/walk/NN-step.png."""

# ruff: noqa: RUF001 (Russian text is the point: Cyrillic letters that look Latin are expected)

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from hub.domain import StaffRole
from hub.services import staff
from tests.e2e.browser import DESKTOP, PHONE, SCREENSHOTS, browser  # noqa: F401 - a fixture
from tests.e2e.live import LiveHub, live_hub
from tests.e2e.test_console_audience import MIA, PASSWORD, fits, go, sign_in, wider
from tests.e2e.test_console_templates import frames

SHOTS = SCREENSHOTS / "walk"
PEOPLE = 1000
PLANS = ("gold", "silver", "bronze")
CITIES = ("Berlin", "Lisbon", "Riga", "Warsaw", "Porto", "Tallinn", "Vilnius")
FIRST = ("Anna", "Ben", "Chloe", "Dmitri", "Eva", "Farid", "Greta", "Hugo", "Ines", "Jonas")
RUSSIAN_FIRST = ("Анна", "Борис", "Вера", "Глеб", "Дарья", "Егор", "Жанна", "Илья", "Ксения")
TOPIC = "winter-offers"
SEGMENT = "gold-or-berlin"
TEMPLATE = "winter-sale"
CAMPAIGN = "Winter sale for gold and Berlin"
# `data.offer` is on line 3 of each HTML body: the dry run names that line.
HTML = (
    '<h1 style="color: rgb(29, 78, 216)">Winter sale, {{ contact.name }}</h1>\n'
    "<p>Only this week, for our {{ contact.attributes.plan }} members:</p>\n"
    '<p style="font-size: 22px"><strong>{{ data.offer }}</strong> on every coat.</p>\n'
    '<p><a href="https://shop.example/winter">See the coats</a></p>'
)
RUSSIAN_HTML = (
    '<h1 style="color: rgb(29, 78, 216)">Зимняя распродажа, {{ contact.name }}</h1>\n'
    "<p>Только на этой неделе:</p>\n"
    '<p style="font-size: 22px"><strong>{{ data.offer }}</strong> на все пальто.</p>\n'
    '<p><a href="https://shop.example/winter">Смотреть пальто</a></p>'
)
SMS = "Winter sale: {{ data.offer }} on every coat this week. shop.example/winter"
RUSSIAN_SMS = (
    "Зимняя распродажа: {{ data.offer }} на все пальто только на этой неделе. shop.example/winter"
)
OFFER = "-20%"  # the campaign's data, read in either language: "-20% на все пальто."


class Steps:
    """Times each step of the walk and prints it, so a slow step is seen in the log."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.took: dict[str, float] = {}

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.took[name] = now - self.last
        self.last = now
        print(f"walk step {name}: {self.took[name]:.1f} s", flush=True)

    def total(self) -> float:
        return time.perf_counter() - self.started


def shoot(page: Page, name: str, *, phone: bool = False) -> None:
    """The whole page at 1280 px, and with `phone` at 390 px too (the same page narrowed, so
    a page that answered a form keeps its state), where it must not scroll sideways.

    The viewport is made as tall as the page instead of a scrolling full-page shot: Chromium
    paints a sandboxed frame only while it is in view."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    _tall_shot(page, SHOTS / f"{name}.png", DESKTOP)
    if phone:
        page.set_viewport_size(PHONE)
        assert fits(page), f"{name} scrolls sideways at 390 px: {wider(page)}"
        _tall_shot(page, SHOTS / f"{name}-390.png", PHONE)
    page.set_viewport_size(DESKTOP)


def _tall_shot(page: Page, path: Path, size: dict[str, int]) -> None:
    page.set_viewport_size(size)
    height = int(page.evaluate("document.documentElement.scrollHeight"))
    page.set_viewport_size({"width": size["width"], "height": max(height, size["height"])})
    page.wait_for_timeout(150)
    page.screenshot(path=path)


def people_csv() -> tuple[str, int, int, int]:
    """1,000 people (half English, half Russian speakers), and how many are on the gold
    plan, in Berlin, and either: what the segment must count."""
    rows = ["external_id,name,email,phone,locale,attr.plan,attr.city"]
    gold = berlin = either = 0
    for i in range(PEOPLE):
        russian = i % 2 == 1
        first = RUSSIAN_FIRST[i % len(RUSSIAN_FIRST)] if russian else FIRST[i % len(FIRST)]
        plan = PLANS[i % len(PLANS)]
        city = CITIES[i % len(CITIES)]
        phone = f"+7912345{i:04d}" if russian else f"+1415555{i:04d}"
        locale = "ru" if russian else "en"
        rows.append(f"w-{i:04d},{first} {i},w{i}@example.com,{phone},{locale},{plan},{city}")
        gold += plan == "gold"
        berlin += city == "Berlin"
        either += plan == "gold" or city == "Berlin"
    return "\n".join(rows) + "\n", gold, berlin, either


@pytest.fixture
def console(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    """A live hub with one marketer (made as `hub staff` would) and nothing else of the
    marketer's: the topic, people, segment, template and campaign are made in the browser."""
    with live_hub(sqlite_template, tmp_path) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, MIA, PASSWORD, StaffRole.MARKETER)
            session.commit()
        yield hub


def click(page: Page, selector: str) -> None:
    """A click that loads a page: a link, or a button posting a form."""
    with page.expect_navigation():
        page.click(selector)


def open_campaign(page: Page) -> None:
    """From anywhere: the Campaigns tab, then the walk's campaign."""
    page.click("nav >> text=Campaigns")
    click(page, f"table >> text={CAMPAIGN}")


def count(page: Page) -> str:
    return page.inner_text("#audience .seg-number")


def test_a_marketer_walks_from_an_empty_hub_to_a_sent_campaign(
    console: LiveHub,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    steps = Steps()
    page = browser.new_page(viewport=DESKTOP)
    base = console.base

    # 1. Sign in.
    sign_in(page, base)
    shoot(page, "01-signed-in")
    steps.done("01 sign in")

    # 2. A marketing topic on e-mail and SMS.
    page.click("nav >> text=Topics")
    click(page, "text=Create a topic")
    page.fill("#key", TOPIC)
    page.fill("#name", "Winter offers")
    page.fill("#description", "Our seasonal sales, at most once a week.")
    assert page.is_checked("#category")  # marketing is the first choice
    page.check("#allowed_channels-sms")
    assert go(page, ".topic-editor form button[type=submit]") == 200
    assert page.inner_text("[role=status]") == "Topic created."
    assert page.is_checked("#allowed_channels")
    assert page.is_checked("#allowed_channels-sms")
    shoot(page, "02-topic")
    steps.done("02 topic")

    # 3. Import 1,000 people, subscribing them on e-mail with their consent.
    data, gold, berlin, either = people_csv()
    upload = tmp_path / "winter-list.csv"
    upload.write_text(data, encoding="utf-8")
    page.click("nav >> text=Contacts")
    click(page, "text=Import a file")
    page.set_input_files("#file", str(upload))
    page.select_option("#subscribe_topic", TOPIC)
    page.select_option("#rank-email", "1")
    page.fill("#consent_source", "winter-newsletter-form")
    page.fill("#consent_note", "Ticked 'send me offers' on the newsletter form")
    shoot(page, "03-import-form")
    assert go(page, "text=Upload and import") == 200
    assert "/console/imports/" in page.url
    shoot(page, "03-import-progress", phone=True)
    page.wait_for_selector("text=The import is done", timeout=60_000)
    assert page.inner_text("#count-rows") == "1,000"
    assert page.inner_text("#count-created") == "1,000"
    assert page.inner_text("#count-failed") == "0"
    assert page.inner_text("#count-subscribed") == "1,000"
    assert "winter-newsletter-form" in page.inner_text("#import-counts")
    shoot(page, "03-import-done", phone=True)
    steps.done("03 import")

    # 4. A saved segment: its count follows the form as the marketer types.
    page.click("nav >> text=Segments")
    click(page, "text=Create a segment")
    expect(page.locator("#audience .seg-number")).to_have_text(f"{PEOPLE:,}")
    page.fill("#key", SEGMENT)
    page.fill("#name", "Gold plan or in Berlin")
    page.select_option("#r-add", "attribute")
    click(page, "button[value='add:r']")
    page.fill("#r-0-name", "plan")
    page.fill("#r-0-value", "gold")
    expect(page.locator("#audience .seg-number")).to_have_text(f"{gold:,}")
    page.select_option("#r-add", "attribute")
    click(page, "button[value='add:r']")
    page.evaluate("window.stillHere = true")  # from here on, no page load: the script counts
    page.fill("#r-1-name", "city")
    page.fill("#r-1-value", "Berlin")  # all of these: gold AND Berlin
    expect(page.locator("#audience .seg-number")).to_have_text(f"{gold + berlin - either:,}")
    page.select_option("#r-type", "any")  # any of these: gold OR Berlin
    expect(page.locator("#audience .seg-number")).to_have_text(f"{either:,}")
    page.select_option("#topic", TOPIC)
    expect(page.locator("#audience")).to_contain_text("among the audience of Winter offers")
    assert count(page) == f"{either:,}"  # every one of them is subscribed
    assert page.evaluate("window.stillHere") is True
    shoot(page, "04-segment")
    click(page, "button[value=save]")
    assert page.inner_text("[role=status]") == "Segment saved."
    page.click("nav >> text=Segments")
    assert "plan is gold or city is Berlin" in page.inner_text("table.segments")
    steps.done("04 segment")

    # 5. The template: English (the default) and Russian, previewed with an offer.
    page.click("nav >> text=Templates")
    page.fill("#new-key", TEMPLATE)
    click(page, "text=Write it")
    page.fill("#email_subject", "Winter sale for {{ contact.name }}")
    page.fill("#email_html", HTML)
    page.fill("#sms_body", SMS)
    page.fill("#description", "The winter sale, with the offer in the campaign's data")
    page.fill("#pdata", "{}")
    click(page, "button[value=preview]")
    # Without an offer in the preview's data, the preview says so in words, and where.
    problem = page.inner_text(".error-summary")
    assert "the data has no 'offer' (line 3)" in problem, problem
    assert "dict object" not in problem
    assert "variants.." not in problem
    shoot(page, "05-template-sample-person")
    page.fill("#pdata", '{"offer": "20% off"}')
    page.fill("#contact", "w-0000")  # one of the people imported: Anna 0, on the gold plan
    click(page, "button[value=preview]")
    desktop, narrow = frames(page)
    for frame in (desktop, narrow):
        assert frame.locator("h1").inner_text() == "Winter sale, Anna 0"
        assert "for our gold members" in frame.locator("body").inner_text()
        assert "20% off on every coat." in frame.locator("body").inner_text()
    sms = page.inner_text("#sms-count")
    assert "1 SMS segment." in sms
    assert "GSM-7" in sms
    shoot(page, "05-template-en-preview", phone=True)
    click(page, "button[value=save]")
    assert page.inner_text("[role=status]") == "Saved as version 1."
    page.fill("#add-locale", "ru")
    click(page, "text=Edit it")
    page.fill("#email_subject", "Зимняя распродажа для {{ contact.name }}")
    page.fill("#email_html", RUSSIAN_HTML)
    page.fill("#sms_body", RUSSIAN_SMS)
    page.fill("#contact", "w-0001")  # Борис 1, who speaks Russian
    page.fill("#pdata", '{"offer": "скидка 20%"}')
    click(page, "button[value=preview]")
    russian, _ = frames(page)
    assert russian.locator("h1").inner_text() == "Зимняя распродажа, Борис 1"
    sms = page.inner_text("#sms-count")
    assert "2 SMS segments." in sms  # the same words in English fit one
    assert "UCS-2" in sms
    shoot(page, "05-template-ru-preview", phone=True)
    click(page, "button[value=save]")
    assert page.inner_text("[role=status]") == "Saved as version 2."
    steps.done("05 templates")

    # 6. The campaign, its data without `offer`: the dry run says so in words, with the part
    # and line, and Schedule is refused; the error leads to the campaign's data, fixed there.
    page.click("nav >> text=Campaigns")
    click(page, "text=New campaign")
    page.fill("#name", CAMPAIGN)
    page.select_option("#topic", TOPIC)
    page.select_option("#template", TEMPLATE)
    page.select_option("#seg-key", SEGMENT)
    click(page, "text=Count the audience")
    assert page.inner_text("[role=status]") == f"The audience now: {either} people."
    click(page, "text=Create draft")
    campaign = page.url
    assert re.search(r"/console/campaigns/\d+$", campaign), campaign
    number = campaign.rsplit("/", 1)[-1]
    click(page, "button:has-text('Dry-run')")
    errors = page.inner_text(".render-errors")
    missing = "the campaign's data has no 'offer'"
    assert f"email_html (the default variant) · line 3: {missing}" in errors, errors
    assert f"ru · email_html · line 3: {missing}" in errors, errors
    assert "dict object" not in errors
    for variant in ("", "ru"):  # each part's editor, opened at the line, knows the campaign
        link = page.locator(
            f".render-errors a[href*='locale={variant}&part=email_html&line=3&campaign={number}']"
        )
        assert link.count() == 1, variant
    shoot(page, "06-dry-run-errors", phone=True)
    click(page, "button:has-text('Schedule')")
    refusal = page.inner_text(".alert[role=alert] >> nth=0")
    assert refusal.startswith(f"Not scheduled: the template does not render for {either} people")
    assert f"email_html (the default variant) · line 3: {missing}" in refusal
    assert refusal.endswith("Fix the template or the campaign's data, then try again.")
    assert page.inner_text(".state") == "draft"
    shoot(page, "06-schedule-refused", phone=True)
    page.click(".render-errors a.fix-data >> nth=0")  # to #data, on the same page
    assert page.evaluate("location.hash") == "#data"
    assert page.input_value("#data-json") == "{}"
    page.fill("#data-json", '{"offer": "-20%",}')  # a trailing comma: not JSON
    click(page, "text=Save the data")
    assert "The data is not JSON" in page.inner_text("#data-error")
    assert page.input_value("#data-json") == '{"offer": "-20%",}'  # shown back as typed
    page.fill("#data-json", f'{{"offer": "{OFFER}"}}')
    shoot(page, "06-fix-data", phone=True)
    click(page, "text=Save the data")
    assert page.inner_text("[role=status]").startswith("Data saved.")
    assert page.url == f"{campaign}?saved=true#data"
    click(page, "button:has-text('Dry-run')")
    assert page.locator(".render-errors").count() == 0
    ready = page.inner_text(".ready")
    assert ready == "Every language × channel renders: ready to schedule."
    renders = page.inner_text(".renders")
    assert f"{OFFER} on every coat." in renders
    assert f"{OFFER} на все пальто." in renders
    shoot(page, "06-dry-run-clean")
    steps.done("06 campaign and dry runs")

    # 7. A test to the marketer's own address: it renders as the first person of the
    # audience (Anna 0, on the gold plan), so what the dry run passed, it passes.
    click(page, "button:has-text('Send a test to me')")
    assert page.inner_text("#test p >> nth=0") == "The test: accepted by the mail server (sent)."
    whose = page.inner_text("#test .whose")
    assert whose.startswith(f"The message Anna 0 (w-0000) would get, sent to {MIA}."), whose
    (mail,) = console.smtp.wait_for(1)
    assert mail.rcpt_tos == (MIA,)
    assert mail.message["Subject"] == "Winter sale for Anna 0"
    html_part = mail.message.get_body(("html",))
    assert html_part is not None
    assert "for our gold members" in html_part.get_content()
    assert f"{OFFER}</strong> on every coat." in html_part.get_content()
    shoot(page, "07-test-sent", phone=True)
    steps.done("07 test send")

    # 8. Schedule; the campaign page updates itself until the campaign is done.
    click(page, "button:has-text('Schedule')")
    assert page.inner_text(".state") in ("scheduled", "sending", "done")
    expect(page.locator(".state")).to_have_text("done", timeout=90_000)
    notification = page.get_attribute(".runs a", "href") or ""
    assert re.fullmatch(r"/console/notifications/\d+", notification), notification
    shoot(page, "08-campaign-done")
    click(page, "text=The report")
    page.wait_for_function(
        "n => document.querySelector('#total-sent')?.textContent === n",
        arg=f"{either:,}",
        timeout=30_000,
    )
    assert page.inner_text("#total-failed") == "0"
    assert page.inner_text("#total-delivered") == "0"  # e-mail has no delivery report...
    assert "E-mail has none unless the mail relay reports it" in page.inner_text(
        "#delivered-means"
    )  # ...and the page says so
    email = page.locator("table.by-channel tbody tr[data-channel=email] td").all_inner_texts()
    assert email[0] == f"{either:,}"  # sent by e-mail
    chart = page.locator("svg.chart")
    assert chart.get_attribute("role") == "img"
    assert f"By the end: {either:,} sent" in (chart.locator("desc").text_content() or "")
    sent = chart.locator("polyline[data-series=sent]").get_attribute("data-values") or ""
    assert sent.split()[-1] == str(either), sent  # the line drawn ends at the total
    shoot(page, "08-report", phone=True)
    assert len(console.smtp.wait_for(either + 1)) == either + 1
    steps.done("08 schedule and report")

    # 9. One recipient's delivery: from the report to the run's notification (nothing
    # failed, so no failure leads there), then the person's profile.
    assert page.get_attribute("ul.runs a", "href") == notification
    click(page, "ul.runs a")
    counted = page.locator("table.counts tbody tr", has_text="email").all_inner_texts()
    assert any(f"{either:,}" in row for row in counted), counted
    shoot(page, "09-notification")
    person = page.locator("table.deliveries tbody td:first-child a").first
    who = person.inner_text()
    with page.expect_navigation():
        person.click()
    assert page.url.endswith(f"/console/contacts/{who}")
    delivered = page.locator("table.timeline > tbody > tr[data-kind^='delivery.']").first
    what = delivered.locator("td.what").inner_text()
    assert what.startswith("E-mail "), what
    assert CAMPAIGN in what, what
    assert f"notification #{notification.rsplit('/', 1)[-1]}" in what, what
    shoot(page, "09-profile")
    steps.done("09 a recipient's timeline")

    total = steps.total()
    print(f"walk total: {total:.1f} s", flush=True)
    page.close()
