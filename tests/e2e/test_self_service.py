"""The self-service pages in headless Chromium, reached from real e-mails.

A notification goes out through the SMTP peer; the test takes the links from the message
the peer received and opens them in Chromium against the hub served by uvicorn. What the
person does there is then checked through the API and on the timeline. Screenshots of each
page (desktop and phone width, English and Russian) go to tests/e2e/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from hub.preferences.tokens import LinkSigner, Purpose
from tests.dispatching import ok, person, settled, timeline, topic, wait_for
from tests.e2e.browser import DESKTOP, PHONE, SCREENSHOTS, browser  # noqa: F401 - a fixture
from tests.e2e.live import LiveHub, live_hub

NEWS = {
    "name": "Product news",
    "description": "New features and releases, about twice a month.",
    "allowed_channels": ["email", "sms"],
    "default_channels": ["email"],
    "allowed_frequencies": ["immediate", "daily", "weekly"],
}
SECURITY = {"name": "Security alerts", "allowed_channels": ["email", "sms"], "required": True}
OFFERS = {"name": "Special offers", "allowed_channels": ["email"]}
CONTENT = {"": {"email_subject": "News", "email_text": "Hello", "email_html": "<p>Hello</p>"}}


class Site(LiveHub):
    def notify(self, topic_key: str, *recipients: str) -> dict[str, Any]:
        body: dict[str, Any] = {"topic": topic_key, "content": CONTENT}
        if recipients:
            body["recipients"] = list(recipients)
        accepted = ok(self.api.post("/v1/notifications", json=body, headers=self.auth), 202)
        done = settled(self.api, self.auth, accepted["id"])
        return {d["contact"]: d for d in done["deliveries"]["items"]}

    def mail_to(self, address: str, count: int = 1) -> Any:
        """The `count`-th message the peer received for `address`."""

        def arrived() -> list[Any]:
            got = [m for m in self.smtp.received if address in m.rcpt_tos]
            return got if len(got) >= count else []

        return wait_for(f"mail {count} to {address}", arrived)[count - 1].message

    def subscription(self, external_id: str, topic_key: str) -> Any:
        return ok(
            self.api.get(f"/v1/contacts/{external_id}/subscriptions/{topic_key}", headers=self.auth)
        )


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path) -> Iterator[Site]:
    with live_hub(sqlite_template, tmp_path, brand_color="#0b5a3c") as hub:
        topic(hub.api, hub.auth, "news", **NEWS)
        topic(hub.api, hub.auth, "security", **SECURITY)
        topic(hub.api, hub.auth, "offers", **OFFERS)
        yield Site(hub.base, hub.api, hub.auth, hub.smtp, hub.runtime)


def preferences_link(message: Any) -> str:
    html = message.get_body(("html",)).get_content()
    found = re.search(r'href="([^"]+/preferences/[^"]+)"', html)
    assert found, "the e-mail carries no preferences link"
    return found.group(1)


def one_click_link(message: Any) -> str:
    found = re.search(r"<(http[^>]+/unsubscribe/[^>]+)>", message["List-Unsubscribe"])
    assert found, message["List-Unsubscribe"]
    return found.group(1)


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def unlabelled(page: Page) -> list[str]:
    """Visible form controls with no label (WCAG 1.3.1, 4.1.2)."""
    result: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
            .map(e => e.name || e.id)"""
    )
    return result


def test_a_person_changes_channels_and_frequency_from_the_link_in_an_email(
    site: Site,
    browser: Browser,  # noqa: F811
) -> None:
    person(
        site.api,
        site.auth,
        "ivan",
        name="Иван",
        email="ivan@example.com",
        phone="+14155550101",
        locale="ru-RU",
        timezone="Europe/Moscow",
        subscribe={"news": ["email"]},
    )
    site.notify("news")
    link = preferences_link(site.mail_to("ivan@example.com"))
    assert link.startswith(site.base)

    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    answer = page.goto(link)
    assert answer is not None
    assert answer.status == 200
    csp = answer.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert page.get_attribute("html", "lang") == "ru"  # the contact's language, not the browser's
    assert page.inner_text("h1") == "Ваши настройки"
    assert unlabelled(page) == []
    assert page.is_disabled("#ch-news-sms") is False  # he has a phone
    shoot(page, "preferences-ru-desktop")

    page.check("#ch-news-sms")
    page.check("#freq-news-weekly")
    page.fill("#quiet-start", "22:00")
    page.fill("#quiet-end", "07:30")
    page.fill("#digest-time", "18:30")
    page.select_option("#digest-weekday", "friday")
    page.focus("button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # the form works from the keyboard
    notice = page.inner_text("[role=status]")
    assert "Product news: Электронная почта, SMS" in notice
    assert "Раз в неделю" in notice
    assert "Тихие часы: 22:00\u201307:30" in notice
    assert "Сводки: 18:30, еженедельная — пятницу" in notice
    shoot(page, "preferences-ru-saved")
    assert all(url.startswith(site.base) for url in requested), requested  # nothing from a CDN

    news = site.subscription("ivan", "news")
    assert (news["channels"], news["frequency"]) == (["email", "sms"], "weekly")
    prefs = ok(site.api.get("/v1/contacts/ivan/preferences", headers=site.auth))
    assert prefs["quiet_hours"] == {"start": "22:00:00", "end": "07:30:00"}
    assert prefs["digest"] == {"time": "18:30:00", "weekday": "friday"}
    changed = [
        e
        for e in timeline(site.api, site.auth, "ivan")
        if e["type"] in {"subscription.changed", "preferences.changed"}
        and e["actor_kind"] == "self_service"
    ]
    assert {e["type"] for e in changed} == {"subscription.changed", "preferences.changed"}
    for event in changed:
        assert event["source"] == "self-service"
        assert event["ip"] == "127.0.0.1"
        assert "Chrome" in event["user_agent"]
    context.close()


def test_one_click_unsubscribe_works_without_cookies_and_a_get_changes_nothing(
    site: Site,
    browser: Browser,  # noqa: F811
) -> None:
    person(site.api, site.auth, "ann", email="ann@example.com", subscribe={"news": ["email"]})
    site.notify("news")
    message = site.mail_to("ann@example.com")
    # RFC 8058 allows the one-click header only with an https link; this test server is
    # plain http on loopback (test_dispatch_peers checks the header with an https URL).
    assert message["List-Unsubscribe-Post"] is None
    url = one_click_link(message)

    page = browser.new_page(viewport=DESKTOP)
    answer = page.goto(url)  # what a link scanner or a curious person does
    assert answer is not None
    assert answer.status == 200
    assert "Stop sending me “Product news”?" in page.inner_text("main")
    shoot(page, "unsubscribe-en-desktop")
    assert httpx.head(url).status_code == 200
    assert site.subscription("ann", "news")["status"] == "subscribed"

    # The mail client's one-click POST: no cookies, no JavaScript, no form token.
    clicked = httpx.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert clicked.status_code == 200
    assert site.subscription("ann", "news")["status"] == "unsubscribed"
    (event,) = [
        e for e in timeline(site.api, site.auth, "ann") if e["actor_kind"] == "self_service"
    ]
    assert event["source"] == "self-service.one-click"

    deliveries = site.notify("news", "ann")
    assert (deliveries["ann"]["state"], deliveries["ann"]["reason"]) == (
        "suppressed",
        "unsubscribed",
    )
    assert len([m for m in site.smtp.received if "ann@example.com" in m.rcpt_tos]) == 1
    page.close()


def test_tampered_expired_and_swapped_links_get_a_friendly_page(
    site: Site,
    browser: Browser,  # noqa: F811
) -> None:
    person(site.api, site.auth, "olga", email="olga@example.com", subscribe={"news": ["email"]})
    site.notify("news")
    message = site.mail_to("olga@example.com")
    link = preferences_link(message)
    token = link.rsplit("/", 1)[1]
    tampered = f"{site.base}/preferences/{token[:-3]}{'AAA' if token[-3:] != 'AAA' else 'BBB'}"
    ttl = dt.timedelta(days=site.runtime.settings.link_ttl_days)
    secrets = site.runtime.settings.link_secrets()
    claims = LinkSigner(secrets, max_age=ttl).verify(Purpose.PREFERENCES, token)
    assert claims.link_key is not None
    issued_long_ago = LinkSigner(secrets, max_age=ttl, clock=lambda: time.time() - 61 * 86400)
    old = issued_long_ago.sign(Purpose.PREFERENCES, claims.contact_id, link_key=claims.link_key)
    expired = f"{site.base}/preferences/{old}"
    swapped = f"{site.base}/preferences/{one_click_link(message).rsplit('/', 1)[1]}"

    page = browser.new_page(viewport=PHONE, locale="ru-RU")
    for url, status, says in (
        (tampered, 400, "Ссылка недействительна"),
        (swapped, 400, "Ссылка недействительна"),  # an unsubscribe token cannot open this page
        (expired, 410, "Срок действия ссылки истёк"),
    ):
        answer = page.goto(url)
        assert answer is not None
        assert answer.status == status, url
        assert says in page.inner_text("main")
        assert page.is_visible("input#email")  # the offer of a fresh link
    shoot(page, "bad-link-ru-phone")
    assert site.subscription("olga", "news")["status"] == "subscribed"
    page.close()


def test_send_me_my_link_answers_alike_and_is_rate_limited(
    site: Site,
    browser: Browser,  # noqa: F811
) -> None:
    person(site.api, site.auth, "ivan", email="ivan@example.com", locale="ru")
    page = browser.new_page(viewport=PHONE, locale="ru-RU")
    page.goto(f"{site.base}/preferences")
    assert page.get_attribute("html", "lang") == "ru"
    shoot(page, "request-link-ru-phone")
    page.fill("#email", "Ivan@Example.com")
    with page.expect_navigation():
        page.click("button[type=submit]")
    known = page.inner_text("main")
    mail = site.mail_to("ivan@example.com")
    link = mail.get_body(("plain",)).get_content()
    found = re.search(r"(http\S+/preferences/\S+)", link)
    assert found
    assert page.goto(found.group(1)).status == 200  # type: ignore[union-attr]

    page.goto(f"{site.base}/preferences")
    page.fill("#email", "nobody@example.com")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.inner_text("main") == known  # the same words whether known or not
    time.sleep(0.5)
    assert [m.rcpt_tos for m in site.smtp.received] == [("ivan@example.com",)]

    statuses = []
    for _ in range(3):
        form = httpx.get(f"{site.base}/preferences").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf
        answer = httpx.post(
            f"{site.base}/preferences", data={"csrf": csrf.group(1), "email": "ivan@example.com"}
        )
        statuses.append(answer.status_code)
    assert statuses == [200, 200, 429]  # three links an hour to one address
    forged = httpx.post(f"{site.base}/preferences", data={"email": "ivan@example.com"})
    assert forged.status_code == 403
    page.close()


def test_a_form_posted_from_another_site_changes_nothing(site: Site) -> None:
    person(site.api, site.auth, "ann", email="ann@example.com", subscribe={"news": ["email"]})
    site.notify("news")
    link = preferences_link(site.mail_to("ann@example.com"))
    csrf = re.search(r'name="csrf" value="([^"]+)"', httpx.get(link).text)
    assert csrf
    form = {
        "csrf": csrf.group(1),
        "unsubscribed_all": "on",
        "channels:news": "email",
        "channels:security": "email",
    }
    evil = httpx.post(link, data=form, headers={"origin": "https://evil.example"})
    assert evil.status_code == 403
    missing = httpx.post(link, data={k: v for k, v in form.items() if k != "csrf"})
    assert missing.status_code == 403
    prefs = ok(site.api.get("/v1/contacts/ann/preferences", headers=site.auth))
    assert prefs["unsubscribed_all"] is False
    good = httpx.post(link, data=form | {"topic:news": "on"}, headers={"origin": site.base})
    assert good.status_code == 200
    assert ok(site.api.get("/v1/contacts/ann/preferences", headers=site.auth))["unsubscribed_all"]


def test_double_opt_in_counts_only_after_the_confirmation(
    site: Site,
    browser: Browser,  # noqa: F811
) -> None:
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{site.base}/subscribe/offers")
    assert unlabelled(page) == []
    shoot(page, "subscribe-en-desktop")
    page.fill("#email", "new@example.com")
    page.fill("#name", "New Person")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "we sent a message" in page.inner_text("main")
    confirmation = site.mail_to("new@example.com")
    assert "Special offers" in confirmation["Subject"]
    text = confirmation.get_body(("plain",)).get_content()
    found = re.search(r"(http\S+/subscribe/confirm/\S+)", text)
    assert found
    external_id = "subscriber:new@example.com"
    assert site.subscription(external_id, "offers")["status"] == "pending"
    assert external_id not in site.notify("offers")  # not in the topic's audience yet
    held = site.notify("offers", external_id)  # and named, refused with the reason
    assert (held[external_id]["state"], held[external_id]["reason"]) == (
        "suppressed",
        "pending_confirmation",
    )

    page.goto(found.group(1))  # a GET only asks
    assert site.subscription(external_id, "offers")["status"] == "pending"
    shoot(page, "confirm-en-desktop")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "you will receive “Special offers”" in page.inner_text("main")
    confirmed = site.subscription(external_id, "offers")
    assert (confirmed["status"], confirmed["consent_source"]) == (
        "subscribed",
        "self-service.double-opt-in",
    )
    (consent,) = [
        e for e in timeline(site.api, site.auth, external_id) if e["reason"] == "double_opt_in"
    ]
    evidence = consent["changes"]["evidence"]
    assert evidence["ip"] == "127.0.0.1"
    assert "Chrome" in evidence["user_agent"]
    assert evidence["requested_at"] < evidence["confirmed_at"]
    sent = site.notify("offers", external_id)
    assert sent[external_id]["state"] == "sent"
    page.close()


@pytest.mark.parametrize("locale", ["en", "ru"])
@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_screenshots_of_the_preferences_page(
    site: Site,
    browser: Browser,  # noqa: F811
    locale: str,
    width: str,
) -> None:
    person(
        site.api,
        site.auth,
        "eva",
        name="Eva",
        email="eva@example.com",
        phone="+14155550177",
        locale=locale,
        timezone="Europe/Berlin",
        subscribe={"news": ["email", "sms"], "offers": ["email"]},
    )
    site.notify("news")
    link = preferences_link(site.mail_to("eva@example.com"))
    page = browser.new_page(viewport=DESKTOP if width == "desktop" else PHONE)
    page.goto(link)
    assert page.get_attribute("html", "lang") == locale
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0  # nothing wider than a phone's screen
    shoot(page, f"preferences-{locale}-{width}")
    page.close()
