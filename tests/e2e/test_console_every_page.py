"""Every console page, found from the app's own routes, opened in headless Chromium by an
admin (who sees them all) at 1280 and at 390 px: axe-core finds no serious or critical
violation, and at 390 px the page does not scroll sideways.

A small world is made first (a topic, people with attributes, a template with two versions, a
segment, a campaign that was sent, an import, a notification and what the capture sink kept
of it, a staff user, an event endpoint that was called) so that every path parameter has a
real value. A GET page under /console that `addresses` has no URL for fails the test: a page
added later is added to that table. Screenshots of every page at both widths go to
tests/e2e/screenshots/every_page/.

axe-core comes from the `axe-playwright-python` wheel (its axe.min.js), evaluated in the page
through the browser's debugging protocol, so the pages' own policy (no script but the hub's)
stays as it is in use."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastapi.routing
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page
from sqlalchemy import func, select

from hub.db.models import ApiKey, Capture, StaffUser
from hub.domain import StaffRole
from hub.services import staff
from tests.dispatching import ok, person, topic, wait_for
from tests.e2e.browser import (  # noqa: F401 - browser is a fixture
    AXE,
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    browser,
    serious_violations,
    wider,
)
from tests.e2e.live import LiveHub, live_hub
from tests.peers.webhooks import WebhookPeer

PASSWORD = "correct horse battery staple"
ADMIN = "ada@acme.example"
SHOTS = SCREENSHOTS / "every_page"
NOT_PAGES = (".js", ".csv", ".css")  # a console GET that answers with something else
LONG_URL = "https://shop.example/orders/" + "A1B2C3D4" * 12 + "?utm_source=hub&utm_medium=email"
TEMPLATE = {
    "description": "Sent when an order ships",
    "variants": {
        "": {
            "email_subject": "Order {{ data.order }} shipped, {{ contact.name }}",
            "email_html": '<h1 style="color:#1d4ed8">Your order shipped</h1>'
            f'<p>Follow it at <a href="{LONG_URL}">{LONG_URL}</a></p>',
            "email_text": "Your order {{ data.order }} shipped. Follow it at " + LONG_URL,
            "sms_body": "Order {{ data.order }} shipped.",
        },
        "ru": {"email_subject": "Заказ {{ data.order }} отправлен", "email_text": "Отправлен."},
    },
}


@dataclass(frozen=True)
class Redirect:
    """A GET under /console that only sends the browser on (a form's choice made into a URL):
    checked where it lands."""

    url: str
    lands_on: str  # the route of the page it sends to


# A path with its parameters filled, what a person does to reach the page (a page that shows
# a secret once is reached only from the form that made the secret), or a redirect.
Visit = str | Callable[[Page], Any] | Redirect


@dataclass(frozen=True)
class World:
    hub: LiveHub
    contact: str
    topic: str
    template: str
    segment: str
    campaign_id: int
    notification_id: int
    scheduled_id: int
    capture_id: int
    import_id: int
    user_id: int
    key_id: int
    endpoint_id: int
    message_id: int


def console_pages(app: FastAPI) -> set[str]:
    """Every GET route under /console that answers with a page (not a script or a CSV)."""
    # FastAPI 0.16x keeps included routers lazily: its own walker lists what they hold.
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = list(walk(app.routes)) if walk is not None else list(app.routes)
    found = set()
    for route in routes:
        path = getattr(route, "path", None) or ""
        methods = getattr(route, "methods", None) or set()
        if path.startswith("/console") and "GET" in methods and not path.endswith(NOT_PAGES):
            found.add(path)
    return found


def addresses(world: World) -> dict[str, Visit]:
    """Each console page's route and how to open it in this world."""
    c, t = world.contact, world.topic
    return {
        "/console": "/console",
        "/console/login": "/console/login",
        "/console/clients": "/console/clients",
        "/console/clients/managers": "/console/clients/managers",
        "/console/captures": "/console/captures",
        "/console/captures/{capture_id}": f"/console/captures/{world.capture_id}",
        "/console/bounces": "/console/bounces",
        "/console/campaigns": "/console/campaigns",
        "/console/campaigns/new": "/console/campaigns/new",
        "/console/campaigns/{campaign_id}": f"/console/campaigns/{world.campaign_id}",
        "/console/campaigns/{campaign_id}/report": f"/console/campaigns/{world.campaign_id}/report",
        "/console/notifications": "/console/notifications",
        "/console/notifications/{notification_id}": (
            f"/console/notifications/{world.notification_id}"
        ),
        "/console/notifications/{notification_id}/cancel": (
            f"/console/notifications/{world.scheduled_id}/cancel"
        ),
        "/console/templates": "/console/templates",
        "/console/templates/edit": f"/console/templates/edit?key={world.template}",
        "/console/templates/history": f"/console/templates/history?key={world.template}",
        "/console/templates/diff": f"/console/templates/diff?key={world.template}",
        "/console/segments": "/console/segments",
        "/console/segments/new": "/console/segments/new",
        "/console/segments/{key}/edit": f"/console/segments/{world.segment}/edit",
        "/console/segments/{key}/delete": f"/console/segments/{world.segment}/delete",
        "/console/contacts": "/console/contacts",
        "/console/contacts/new": "/console/contacts/new",
        "/console/contacts/{external_id}": f"/console/contacts/{c}",
        "/console/contacts/{external_id}/edit": f"/console/contacts/{c}/edit",
        "/console/contacts/{external_id}/subscriptions": Redirect(
            f"/console/contacts/{c}/subscriptions?topic={t}",
            "/console/contacts/{external_id}/subscriptions/{topic}",
        ),
        "/console/contacts/{external_id}/subscriptions/{topic}": (
            f"/console/contacts/{c}/subscriptions/{t}"
        ),
        "/console/contacts/{external_id}/preferences": f"/console/contacts/{c}/preferences",
        "/console/imports": "/console/imports",
        "/console/imports/new": "/console/imports/new",
        "/console/imports/{job_id}": f"/console/imports/{world.import_id}",
        "/console/topics": "/console/topics",
        "/console/topics/new": "/console/topics/new",
        "/console/topics/{key}/edit": f"/console/topics/{t}/edit",
        "/console/admin": "/console/admin",
        "/console/admin/users": "/console/admin/users",
        "/console/admin/users/new": "/console/admin/users/new",
        "/console/admin/users/{user_id}": f"/console/admin/users/{world.user_id}",
        "/console/admin/users/{user_id}/password": new_user,
        "/console/admin/keys": "/console/admin/keys",
        "/console/admin/keys/new": "/console/admin/keys/new",
        "/console/admin/keys/{key_id}/created": new_key,
        "/console/admin/keys/{key_id}/revoke": f"/console/admin/keys/{world.key_id}/revoke",
        "/console/admin/endpoints": "/console/admin/endpoints",
        "/console/admin/endpoints/new": "/console/admin/endpoints/new",
        "/console/admin/endpoints/{endpoint_id}/created": new_endpoint,
        "/console/admin/endpoints/{endpoint_id}": f"/console/admin/endpoints/{world.endpoint_id}",
        "/console/admin/endpoints/{endpoint_id}/edit": (
            f"/console/admin/endpoints/{world.endpoint_id}/edit"
        ),
        "/console/admin/endpoints/{endpoint_id}/messages/{message_id}": (
            f"/console/admin/endpoints/{world.endpoint_id}/messages/{world.message_id}"
        ),
        "/console/admin/audit": "/console/admin/audit",
    }


def submitted(page: Page, button: str) -> int:
    with page.expect_navigation() as navigation:
        page.click(button)
    response = navigation.value
    assert response is not None
    return response.status


def new_user(page: Page) -> int:
    """A staff user with a generated password: the password is shown once, on the next page."""
    page.goto(page.url.split("/console")[0] + "/console/admin/users/new")
    page.fill("#email", f"new-{time.monotonic_ns()}@acme.example")
    page.check("#role-viewer")
    return submitted(page, "button:has-text('Add staff user')")


def new_key(page: Page) -> int:
    page.goto(page.url.split("/console")[0] + "/console/admin/keys/new")
    page.fill("#name", f"service-{time.monotonic_ns()}")
    page.check("#scope-notify")
    return submitted(page, "button:has-text('Create key')")


def new_endpoint(page: Page) -> int:
    page.goto(page.url.split("/console")[0] + "/console/admin/endpoints/new")
    page.fill("#url", "https://crm.example.com/hub-events/" + "x" * 60)
    page.check("#event-delivery\\.sent")
    return submitted(page, "button:has-text('Add endpoint')")


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#email", ADMIN)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith("/console"), page.url


@pytest.fixture
def world(sqlite_template: Path, tmp_path: Path, browser: Browser) -> Iterator[World]:  # noqa: F811
    # No SMTP relay: e-mail goes to the capture sink, so the captured pages have a message.
    with (
        WebhookPeer() as receiver,
        live_hub(sqlite_template, tmp_path, smtp_host=None, webhook_allow_private=True) as hub,
    ):
        with hub.runtime.sessions() as session:
            staff.create(session, ADMIN, PASSWORD, StaffRole.ADMIN)
            staff.create(session, "mia@acme.example", PASSWORD, StaffRole.MARKETER)
            session.commit()
        api, auth = hub.api, hub.auth
        endpoint = ok(
            api.post(
                "/v1/event-endpoints",
                json={
                    "url": receiver.url("/crm"),
                    "event_types": ["subscription.changed"],
                    "secret": receiver.secret,
                },
                headers=auth,
            ),
            201,
        )
        topic(api, auth, "orders", name="Order updates", allowed_channels=["email", "sms"])
        person(
            api,
            auth,
            "ann-lee",
            name="Ann Lee",
            email="ann.lee.with.a.rather.long.address@example.com",
            attributes={
                "plan": "gold",
                "seats": 12,
                "vip": True,
                "tags": ["early", "beta"],
                "address": {"city": "Oslo", "street": "Karl Johans gate 1"},
                "homepage": LONG_URL,
            },
            subscribe={"orders": ["email"]},
        )
        person(api, auth, "bo", name="Bo", email="bo@example.com", subscribe={"orders": ["email"]})
        ok(api.put("/v1/templates/shipped", json=TEMPLATE, headers=auth))
        second = TEMPLATE | {"description": "Sent when an order leaves the warehouse"}
        ok(api.put("/v1/templates/shipped", json=second, headers=auth))
        gold = {
            "name": "Gold plan",
            "conditions": {"all": [{"attribute": {"name": "plan", "equals": "gold"}}]},
        }
        ok(api.put("/v1/segments/gold", json=gold, headers=auth))
        campaign = ok(
            api.post(
                "/v1/campaigns",
                json={
                    "name": "Shipping news",
                    "topic": "orders",
                    "template": "shipped",
                    "segment_key": "gold",
                    "data": {"order": "A-7"},
                },
                headers=auth,
            ),
            201,
        )
        ok(api.post(f"/v1/campaigns/{campaign['id']}/schedule", headers=auth))
        sent = ok(
            api.post(
                "/v1/notifications",
                json={
                    "topic": "orders",
                    "recipients": ["bo"],
                    "template": "shipped",
                    "data": {"order": "B-9"},
                },
                headers=auth,
            ),
            202,
        )
        # and one held until tomorrow, whose cancel page is a page (not a redirect)
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
        scheduled = ok(
            api.post(
                "/v1/notifications",
                json={
                    "topic": "orders",
                    "recipients": ["bo"],
                    "template": "shipped",
                    "data": {"order": "B-10"},
                    "send_at": later,
                },
                headers=auth,
            ),
            202,
        )

        def captured() -> int | None:
            """Bo's e-mail (the notification's), once Ann's (the campaign's) is kept too."""
            with hub.runtime.reads() as session:
                count = session.scalar(select(func.count()).select_from(Capture)) or 0
                bos = session.scalar(select(Capture.id).where(Capture.to == "bo@example.com"))
            return bos if count >= 2 else None

        capture_id = wait_for("two captured e-mails", captured, timeout=30)
        messages = wait_for(
            "the endpoint's first message",
            lambda: (
                ok(api.get(f"/v1/event-endpoints/{endpoint['id']}/messages", headers=auth))["items"]
                or None
            ),
        )

        # An import through the console, as a marketer would do it.
        page = browser.new_page(viewport=DESKTOP)
        sign_in(page, hub.base)
        upload = tmp_path / "people.csv"
        upload.write_text(
            "external_id,email,name\ncx-1,cx1@example.com,Cy\ncx-2,not-an-address,Di\n"
        )
        page.goto(f"{hub.base}/console/imports/new")
        page.set_input_files("#file", str(upload))
        assert submitted(page, "text=Upload and import") == 200
        page.wait_for_selector("text=The import is done", timeout=60_000)
        found = re.search(r"/console/imports/(\d+)", page.url)
        assert found is not None, page.url
        page.close()

        with hub.runtime.reads() as session:
            user_id = session.scalar(
                select(StaffUser.id).where(StaffUser.email == "mia@acme.example")
            )
            key_id = session.scalar(select(ApiKey.id).where(ApiKey.name == "crm"))
        assert user_id is not None
        assert key_id is not None
        yield World(
            hub=hub,
            contact="ann-lee",
            topic="orders",
            template="shipped",
            segment="gold",
            campaign_id=campaign["id"],
            notification_id=sent["id"],
            scheduled_id=scheduled["id"],
            capture_id=capture_id,
            import_id=int(found.group(1)),
            user_id=user_id,
            key_id=key_id,
            endpoint_id=endpoint["id"],
            message_id=messages[0]["id"],
        )


def pattern(route: str) -> re.Pattern[str]:
    """The route as a regular expression over a URL's path: where a visit must end up."""
    return re.compile(re.sub(r"\\{[a-z_]+\\}", "[^/]+", re.escape(route)) + "$")


def open_page(page: Page, base: str, visit: Visit) -> int:
    if isinstance(visit, Redirect):
        visit = visit.url
    if isinstance(visit, str):
        response = page.goto(base + visit)
        assert response is not None
        return response.status
    status: int = visit(page)
    return status


def test_every_console_page_passes_axe_and_fits_a_phone(
    world: World,
    browser: Browser,  # noqa: F811
) -> None:
    app = world.hub.api.app
    assert isinstance(app, FastAPI)
    routes = console_pages(app)
    table = addresses(world)
    missing = sorted(routes - table.keys())
    assert not missing, (
        f"console pages this test has no URL for (add them to `addresses`): {missing}"
    )
    stale = sorted(table.keys() - routes)
    assert not stale, f"`addresses` names routes the console no longer has: {stale}"

    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport=DESKTOP)
    # The checker itself first: it must see what it is here to find.
    page.set_content('<html lang="en"><title>t</title><main><img src="x.png"></main></html>')
    assert serious_violations(page)[0].startswith("image-alt (critical) at img")
    sign_in(page, world.hub.base)
    problems = []
    # The hub's front page wears the console's look, so it is held to the same bar.
    table["/"] = "/"
    for route in sorted(table):
        visit = table[route]
        where = pattern(visit.lands_on if isinstance(visit, Redirect) else route)
        name = route.removeprefix("/console").strip("/").replace("/", "-") or "dashboard"
        if route == "/":
            name = "front-page"
        name = re.sub(r"[{}]", "", name)
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(viewport)
            status = open_page(page, world.hub.base, visit)
            path = page.url.removeprefix(world.hub.base).split("?")[0]
            if status != 200 or not where.match(path):
                problems.append(f"{route} at {width}: {status} at {page.url}")
                continue
            page.screenshot(path=SHOTS / f"{name}-{width}.png", full_page=True)
            problems += [f"{route} at {width}: {v}" for v in serious_violations(page)]
            if width == "phone" and not page.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth"
            ):
                problems.append(f"{route} at 390 px scrolls sideways: {wider(page)}")
    assert not problems, "\n".join(problems)

    # The captured e-mail leads to the notification it was sent for.
    page.goto(f"{world.hub.base}/console/captures/{world.capture_id}")
    assert page.get_attribute("text=notification #", "href") == (
        f"/console/notifications/{world.notification_id}"
    )
