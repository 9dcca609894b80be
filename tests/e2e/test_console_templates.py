"""The template editor in headless Chromium: a marketer writes an English and a Russian
variant with HTML, sees the e-mail rendered in a sandboxed frame at computer and phone width
(its inline styles applied, its script never run), the SMS segment count grow for Cyrillic
text, the variables with the preview's data; saves twice, reads the diff and restores. The
same pages at 390 px scroll nowhere sideways. Opened from a campaign's dry run, the failing
part is focused and its line marked, the preview is of a real person and says what to do
next, and the way back to the campaign stays through preview and save; axe-core finds nothing
serious there. Screenshots go to tests/e2e/screenshots/."""

# ruff: noqa: RUF001 (Russian text is the point: Cyrillic letters that look Latin are expected)

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Frame, Page

from hub.domain import StaffRole
from hub.services import staff
from tests.dispatching import ok, person, topic
from tests.e2e.browser import DESKTOP, PHONE, SCREENSHOTS, browser, serious_violations  # noqa: F401 - a fixture
from tests.e2e.live import LiveHub, live_hub

PASSWORD = "correct horse battery staple"
HTML = (
    '<h1 style="color: rgb(200, 30, 30); font-size: 28px">Hello {{ contact.name }}</h1>\n'
    "<p>Your order {{ data.order.number }} is on its way.</p>\n"
    "<script>document.body.setAttribute('data-ran', 'yes'); parent.document.title = 'pwned'"
    "</script>"
)
RUSSIAN_HTML = (
    '<h1 style="color: rgb(200, 30, 30)">Здравствуйте, {{ contact.name }}</h1>\n'
    "<p>Ваш заказ {{ data.order.number }} уже в пути.</p>"
)
SMS = (
    "Hi {{ contact.name }}, order {{ data.order.number }} has shipped "
    "and will be with you in two or three days."
)
RUSSIAN_SMS = (
    "Здравствуйте, {{ contact.name }}! Ваш заказ {{ data.order.number }} отправлен "
    "и будет у вас через два-три дня."
)
RUSSIAN_SMS_2 = (
    "Здравствуйте, {{ contact.name }}! Ваш заказ {{ data.order.number }} отправлен сегодня "
    "и будет у вас через два-три дня."
)


@pytest.fixture
def console(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(sqlite_template, tmp_path) as hub:
        with hub.runtime.sessions() as session:
            staff.create(session, "mia@acme.example", PASSWORD, StaffRole.MARKETER)
            session.commit()
        yield hub


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#email", "mia@acme.example")
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith("/console")


def shoot(page: Page, name: str) -> None:
    """The whole page, taken with a viewport as tall as the page: Chromium paints a sandboxed
    frame only while it is in view, so a scrolling full-page shot leaves frames half blank."""
    SCREENSHOTS.mkdir(exist_ok=True)
    viewport = page.viewport_size
    assert viewport is not None
    height = int(page.evaluate("document.documentElement.scrollHeight"))
    page.set_viewport_size({"width": viewport["width"], "height": height})
    page.wait_for_timeout(200)
    page.screenshot(path=SCREENSHOTS / f"console-templates-{name}.png")
    page.set_viewport_size(viewport)


def fits(page: Page) -> bool:
    """No sideways scrolling of the page itself (a frame or table scrolls inside its region)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def press(page: Page, action: str) -> int:
    with page.expect_navigation() as navigation:
        page.click(f"button[value={action}]")
    response = navigation.value
    assert response is not None
    return response.status


def frames(page: Page) -> list[Frame]:
    found = [f for f in page.frames if f != page.main_frame]
    assert len(found) == 2, "one frame at computer width, one at phone width"
    return found


def test_a_marketer_previews_saves_compares_and_restores(
    console: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    page = browser.new_page(viewport=DESKTOP)
    messages: list[str] = []
    page.on("console", lambda message: messages.append(_text(message)))
    sign_in(page, console.base)
    page.click("nav >> text=Templates")
    page.fill("#new-key", "shipped")
    with page.expect_navigation():
        page.click("text=Write it")

    page.fill("#email_subject", "Your order {{ data.order.number }} has shipped")
    page.fill("#email_html", HTML)
    page.fill("#sms_body", SMS)
    page.fill("#webhook_json", '{"event": "shipped", "order": "{{ data.order.number }}"}')
    page.fill("#description", "Sent when an order leaves the warehouse")
    page.fill("#pdata", '{"order": {"number": "A-100"}}')
    assert press(page, "preview") == 200
    assert page.url.endswith("#preview")
    assert page.inner_text(".channel-email .subject") == "Subject: Your order A-100 has shipped"

    desktop, phone = frames(page)
    for frame, width in ((desktop, 700), (phone, 375)):
        element = frame.frame_element()
        assert element.get_attribute("sandbox") == ""  # no allow-scripts, no allow-same-origin
        box = element.bounding_box()
        assert box is not None
        assert round(box["width"]) == width
        heading = frame.locator("h1")
        assert heading.inner_text() == "Hello Sample Person"
        # The e-mail's own inline styles apply inside the frame...
        assert heading.evaluate("e => getComputedStyle(e).color") == "rgb(200, 30, 30)"
        # ...and its script never ran: not in the frame, not on the page.
        assert frame.locator("body").get_attribute("data-ran") is None
    assert page.title() != "pwned"
    assert page.evaluate("document.body.dataset.ran") is None
    assert any("Blocked script execution" in m and "sandboxed" in m for m in messages), messages
    assert "Hello Sample Person" in page.inner_text(".channel-email .text-part")

    sms = page.inner_text("#sms-count")
    assert "1 SMS segment." in sms
    assert "GSM-7" in sms
    assert '"order": "A-100"' in page.inner_text(".channel-webhook pre")
    variables = page.inner_text(".variables table")
    assert "data.order.number\tA-100" in variables
    assert "contact.name\tSample Person" in variables
    assert fits(page)
    shoot(page, "preview-desktop")

    assert press(page, "save") == 200
    assert page.inner_text("[role=status]") == "Saved as version 1."
    assert page.input_value("#description") == "Sent when an order leaves the warehouse"

    # The Russian variant: Cyrillic turns the SMS into UCS-2, and it takes two segments.
    page.fill("#add-locale", "ru")
    with page.expect_navigation():
        page.click("text=Edit it")
    page.fill("#email_subject", "Заказ {{ data.order.number }} отправлен")
    page.fill("#email_html", RUSSIAN_HTML)
    page.fill("#sms_body", RUSSIAN_SMS)
    page.fill("#contact", "")
    page.fill("#pdata", '{"order": {"number": "A-100"}}')
    assert press(page, "preview") == 200
    sms = page.inner_text("#sms-count")
    assert "2 SMS segments." in sms, sms
    assert "UCS-2" in sms
    assert "outside the GSM alphabet" in sms
    russian, _ = frames(page)
    assert russian.locator("h1").inner_text() == "Здравствуйте, Sample Person"
    assert "Отписаться" in russian.locator("body").inner_text()  # the footer speaks Russian
    shoot(page, "preview-russian")
    assert press(page, "save") == 200
    assert page.inner_text("[role=status]") == "Saved as version 2."

    page.fill("#sms_body", RUSSIAN_SMS_2)
    assert press(page, "save") == 200
    assert page.inner_text("[role=status]") == "Saved as version 3."
    history = page.inner_text("table.versions")
    assert "mia@acme.example" in history
    assert history.count("mia@acme.example") == 3

    # What changed in version 3: the SMS line, the changed words marked.
    with page.expect_navigation():
        page.click("text=What changed in version 3")
    assert page.inner_text("h1") == "Template shipped: version 2 to 3"
    part = page.inner_text(".diff-part h2")
    assert "SMS text, language ru" in part
    assert "отправлен и будет" in page.inner_text(".diff .removed")
    assert "сегодня" in page.inner_text(".diff .added ins")
    assert fits(page)
    shoot(page, "diff-desktop")

    # Restore version 2: a new version 4 with version 2's text.
    with page.expect_navigation():
        page.click("button:has-text('Restore version 2')")
    assert page.inner_text("[role=status]") == "Version 2 is restored, as version 4."
    saved = ok(console.api.get("/v1/templates/shipped", headers=console.auth))
    assert saved["version"] == 4
    assert saved["variants"]["ru"]["sms_body"] == RUSSIAN_SMS
    assert saved["variants"][""]["webhook_json"] == {
        "event": "shipped",
        "order": "{{ data.order.number }}",
    }
    assert saved["description"] == "Sent when an order leaves the warehouse"
    listed = ok(console.api.get("/v1/templates/shipped/versions", headers=console.auth))
    assert [v["version"] for v in listed["items"]] == [4, 3, 2, 1]
    page.click("text=History")
    page.wait_for_url("**/console/templates/history?key=shipped")
    shoot(page, "history-desktop")
    page.click("nav >> text=Templates")
    cells = page.locator("table tbody tr td").all_inner_texts()
    assert cells[0] == "shipped"
    assert cells[1] == "Sent when an order leaves the warehouse"
    assert cells[2].startswith("4")
    assert cells[3] == "default, ru"  # not ", ru"
    shoot(page, "list-desktop")


def test_the_pages_fit_a_phone(console: LiveHub, browser: Browser) -> None:  # noqa: F811
    body = {
        "description": "Sent when an order leaves the warehouse",
        "variants": {
            "": {
                "email_subject": "Your order {{ data.order.number }} has shipped",
                "email_html": HTML,
                "sms_body": SMS,
            },
            "ru": {"sms_body": RUSSIAN_SMS, "email_html": RUSSIAN_HTML},
        },
    }
    ok(console.api.put("/v1/templates/shipped", json=body, headers=console.auth), 201)
    body["variants"]["ru"]["sms_body"] = RUSSIAN_SMS_2
    ok(console.api.put("/v1/templates/shipped", json=body, headers=console.auth))
    page = browser.new_page(viewport=PHONE)
    sign_in(page, console.base)
    page.goto(f"{console.base}/console/templates/edit?key=shipped&locale=ru")
    assert fits(page)
    shoot(page, "editor-phone")
    page.fill("#pdata", '{"order": {"number": "A-100"}}')
    assert press(page, "preview") == 200
    _, phone = frames(page)
    assert phone.locator("h1").inner_text() == "Здравствуйте, Sample Person"
    assert fits(page)  # the 700 px frame scrolls inside its own region
    page.locator("#preview").scroll_into_view_if_needed()
    shoot(page, "preview-phone")

    # A part that does not compile: named in the summary, linked to its field.
    page.fill("#sms_body", "{{ contact.name ")
    assert press(page, "save") == 422
    summary = page.locator(".error-summary")
    assert "There is a problem" in summary.inner_text()
    link = summary.locator("a[href='#sms_body']")
    assert "SMS text" in link.inner_text()
    assert "SMS text" in page.inner_text("#sms_body-error")
    assert fits(page)
    shoot(page, "error-phone")

    page.goto(f"{console.base}/console/templates/diff?key=shipped&b=2")
    assert fits(page)
    shoot(page, "diff-phone")
    page.goto(f"{console.base}/console/templates/history?key=shipped")
    assert fits(page)
    shoot(page, "history-phone")
    page.goto(f"{console.base}/console/templates")
    assert fits(page)
    shoot(page, "list-phone")
    page.goto(f"{console.base}/console/templates/edit?key=Order%20Updates")  # past `pattern`
    assert page.locator(".error-summary a[href='#new-key']").is_visible()
    assert page.input_value("#new-key") == "Order Updates"
    assert fits(page)
    shoot(page, "list-error-phone")


# `plan` is read on line 2, `data.offer` on line 3: the campaign's data has no offer.
SALE_HTML = (
    "<h1>Winter sale, {{ contact.name }}</h1>\n"
    "<p>For our {{ contact.attributes.plan }} members:</p>\n"
    "<p><strong>{{ data.offer }}</strong> on every coat.</p>"
)
SALE_SMS = "Winter sale, {{ contact.name }}: {{ data.offer | default('20% off') }} on coats."


def test_from_a_campaigns_dry_run_the_line_is_marked_and_the_way_back_kept(
    console: LiveHub,
    browser: Browser,  # noqa: F811
) -> None:
    api, auth = console.api, console.auth
    topic(api, auth, "offers")
    person(api, auth, "ann", name="Ann Lee", locale="en", attributes={"plan": "gold"})
    person(api, auth, "cy", name="Cy", locale="en")  # newer, without attributes
    sale = {
        "variants": {"": {"email_subject": "Sale", "email_html": SALE_HTML, "sms_body": SALE_SMS}}
    }
    ok(api.put("/v1/templates/sale", json=sale, headers=auth), 201)
    body = {"name": "Winter sale", "topic": "offers", "template": "sale", "data": {}}
    campaign = ok(api.post("/v1/campaigns", json=body, headers=auth), 201)["id"]
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, console.base)

    # The link as the campaign's dry run writes it.
    link = f"/console/templates/edit?key=sale&locale=&part=email_html&line=3&campaign={campaign}"
    page.goto(f"{console.base}{link}#email_html")
    assert page.evaluate("document.activeElement.id") == "email_html"
    mark = page.inner_text("#email_html-error")
    assert "Line 3 of this part fails: " in mark
    assert "offer" in mark
    assert "Line 3: <p><strong>{{ data.offer }}</strong> on every coat.</p>" in mark
    assert "Rendered again now for Ann Lee (ann)" in page.inner_text(".from-campaign")
    back = page.locator(".from-campaign a", has_text="Back to the campaign")
    assert back.get_attribute("href") == f"/console/campaigns/{campaign}"
    assert page.input_value("#pdata").strip() == "{}"  # the campaign's data, to preview with
    _checked(page, "from-campaign")

    # Preview as it is: it fails, and the summary says what to do next.
    assert press(page, "preview") == 200
    summary = page.inner_text(".error-summary")
    assert "What to do next" in summary
    assert "The campaign's data has no “offer”" in summary
    assert (
        "Preview for Ann Lee (ann), the newest contact with attributes (plan)"
        in page.inner_text(".preview-for")
    )
    assert page.locator(".from-campaign a", has_text="Back to the campaign").count() == 1
    _checked(page, "from-campaign-preview")

    # Fixed and previewed: the e-mail renders for Ann, the SMS counts at 390 px too.
    page.fill(
        "#email_html",
        SALE_HTML.replace("{{ data.offer }}", "{{ data.offer | default('20% off') }}"),
    )
    assert press(page, "preview") == 200
    desktop, _ = frames(page)
    assert "For our gold members:" in desktop.locator("body").inner_text()
    page.set_viewport_size(PHONE)
    assert "1 SMS segment." in page.inner_text("#sms-count")
    assert fits(page)
    page.set_viewport_size(DESKTOP)

    # Saved: the notice, the fresh render clean, and the way back.
    assert press(page, "save") == 200
    assert page.inner_text("[role=status]") == "Saved as version 2."
    box = page.inner_text(".from-campaign")
    assert "every part of the default language renders" in box
    _checked(page, "from-campaign-saved")
    with page.expect_navigation():
        page.click(".from-campaign >> text=Back to the campaign")
    assert page.url == f"{console.base}/console/campaigns/{campaign}"

    # An older link (the part only as a fragment) finds the campaign from the Referer.
    page.goto(
        f"{console.base}/console/templates/edit?key=sale&locale=#email_html",
        referer=f"{console.base}/console/campaigns/{campaign}",
    )
    assert page.locator(".from-campaign a", has_text="Back to the campaign").count() == 1


def _checked(page: Page, name: str) -> None:
    """At 1280 and 390 px: axe-core finds nothing serious, nothing scrolls sideways; shot."""
    for viewport, width in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(viewport)
        assert fits(page), name
        assert serious_violations(page) == [], name
        shoot(page, f"{name}-{width}")
    page.set_viewport_size(DESKTOP)


def _text(message: ConsoleMessage) -> str:
    return message.text
