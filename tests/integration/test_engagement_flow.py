"""Opens and clicks through a real mail flow: the SMTP peer receives the message, the test
follows its rewritten links and loads its pixel over HTTP like a mail client, and the
timeline and an event endpoint show them; machines are flagged, an opted-out person gets
untracked mail, and a damaged link never redirects."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.app import create_app
from hub.db.models import Engagement
from hub.dispatch.engagement import Recorder
from hub.domain import Scope
from hub.runtime import Runtime
from hub.selfservice.tracking import Tracking
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import ok, peer_settings, person, settled, timeline, topic, wait_for
from tests.peers.smtp import SmtpPeer
from tests.peers.twilio import TwilioPeer
from tests.peers.webhooks import WebhookPeer
from tests.serving import listening_socket, serving

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
OFFER = "https://shop.example.com/winter?utm_source=hub&size=m"
GUIDE = "https://shop.example.com/guide"
TEMPLATE = {
    "variants": {
        "": {
            "email_subject": "Winter offers for {{ contact.name }}",
            "email_html": (
                '<img src="https://shop.example.com/winter.png" alt="Winter offers">'
                '<p>Hello {{ contact.name }},</p><p><a href="' + OFFER.replace("&", "&amp;") + '">'
                'See the offer</a> or <a class="button" href=\'' + GUIDE + "'>read the guide</a>."
                '</p><p><a href="{{ links.unsubscribe_url }}">Unsubscribe</a></p>'
            ),
            "email_text": "Hello {{ contact.name }}, see " + OFFER + " or read " + GUIDE + ".",
        }
    }
}
Wired = tuple[TestClient, dict[str, str], str, Runtime]


@pytest.fixture
def peers() -> Iterator[tuple[SmtpPeer, WebhookPeer]]:
    with SmtpPeer() as smtp, WebhookPeer() as hooks:
        yield smtp, hooks


@pytest.fixture
def wired(database_url: str, peers: tuple[SmtpPeer, WebhookPeer]) -> Iterator[Wired]:
    """The hub over real HTTP (its public URL is where it listens), workers in-process."""
    smtp, _ = peers
    sock, base = listening_socket()
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        public_url=base,
        **peer_settings(smtp),
        webhook_allow_private=True,
        sweep_interval_seconds=0.1,
        event_retry_schedule=(0.2, 0.2),
        tracking_settle_seconds=0.5,
        tracking_too_soon_seconds=0,
    )
    with served(settings, sock) as (client, runtime):
        yield client, make_key(runtime, "shop", Scope.ADMIN), base, runtime


@contextlib.contextmanager
def served(settings: Settings, sock: socket.socket) -> Iterator[tuple[TestClient, Runtime]]:
    """The hub over real HTTP on `sock` (its public URL), with its workers in-process."""
    runtime = Runtime.build(settings)
    workers = Workers(runtime)
    workers.start()
    app = create_app(runtime=runtime)
    try:
        with serving(app, sock), TestClient(app, raise_server_exceptions=False) as client:
            yield client, runtime
    finally:
        workers.stop()
        runtime.close()


def _links(html: str) -> list[str]:
    return [m.replace("&amp;", "&") for m in re.findall(r"""href=["']([^"']+)["']""", html)]


def _parts(message: Any) -> tuple[str, str]:
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    return html, text


def _engaged(client: TestClient, auth: dict[str, str], who: str, count: int) -> list[Any]:
    def probe() -> list[Any] | None:
        kinds = ("delivery.opened", "delivery.clicked")
        found = [e for e in timeline(client, auth, who) if e["type"] in kinds]
        return found if len(found) >= count else None

    return wait_for(f"{count} engagement events for {who}", probe, timeout=10)


def test_a_person_opens_and_clicks_machines_are_flagged_and_an_opt_out_is_not_tracked(
    wired: Wired, peers: tuple[SmtpPeer, WebhookPeer]
) -> None:
    client, auth, base, _ = wired
    smtp, hooks = peers
    events = ["delivery.opened", "delivery.clicked"]
    body = {"url": hooks.url("/crm"), "event_types": events, "secret": hooks.secret}
    ok(client.post("/v1/event-endpoints", json=body, headers=auth), 201)
    topic(client, auth, "offers", category="marketing")
    ok(client.put("/v1/templates/winter", json=TEMPLATE, headers=auth))
    for who in ("ada", "bob", "cy"):
        person(client, auth, who, name=who.title(), email=f"{who}@example.com")
        ok(
            client.put(
                f"/v1/contacts/{who}/subscriptions/offers",
                json={"channels": ["email"]},
                headers=auth,
            )
        )
    patch = {"tracking_off": True}
    ok(client.patch("/v1/contacts/cy/preferences", json=patch, headers=auth))
    sent = ok(
        client.post(
            "/v1/notifications",
            json={"topic": "offers", "template": "winter", "data": {}},
            headers=auth | {"Idempotency-Key": "winter-1"},
        ),
        202,
    )
    done = settled(client, auth, sent["id"])
    assert done["counts"] == {"sent": 3}, [
        (d["error"], d.get("reason")) for d in done["deliveries"]["items"]
    ]
    mails = {m.rcpt_tos[0]: m.message for m in smtp.wait_for(3)}

    # Cy turned tracking off: the links are the template's own, and there is no pixel.
    cy_html, cy_text = _parts(mails["cy@example.com"])
    assert "/t/" not in cy_html + cy_text
    assert _links(cy_html)[:2] == [OFFER, GUIDE]

    # Ada's links go through signed redirects, the same link numbered alike in both parts;
    # her own unsubscribe link and List-Unsubscribe stay direct.
    html, text = _parts(mails["ada@example.com"])
    offer, guide, *own = _links(html)  # then the layout's footer: preferences, unsubscribe
    assert offer.startswith(f"{base}/t/c/")
    assert guide.startswith(f"{base}/t/c/")
    assert own
    assert all(link.startswith((f"{base}/unsubscribe/", f"{base}/preferences/")) for link in own)
    assert offer in text
    assert guide in text
    assert "/unsubscribe/" in mails["ada@example.com"]["List-Unsubscribe"]
    (pixel,) = re.findall(r'<img src="([^"]+/t/o/[^"]+)"', html)

    with httpx.Client(headers={"User-Agent": CHROME}) as mail_client:
        # A proxy fetches the pictures as the mail arrives; then Ada reads it and clicks.
        proxied = mail_client.get(pixel, headers={"User-Agent": GMAIL_PROXY})
        assert proxied.status_code == 200
        assert mail_client.get(pixel).headers["content-type"] == "image/gif"
        answer = mail_client.get(offer)
        assert answer.status_code == 302
        assert answer.headers["location"] == OFFER
        # One byte changed in the token: the friendly page, never a redirect.
        token = guide.rsplit("/", 1)[1]
        forged = f"{base}/t/c/{token[:-3]}{'A' if token[-3] != 'A' else 'B'}{token[-2:]}"
        page = mail_client.get(forged)
        assert page.status_code == 404
        assert "location" not in page.headers
        assert "This link does not work" in page.text
        # Another target under Ada's signature: refused the same way.
        body_part = token.split(".")[0]
        assert mail_client.get(f"{base}/t/c/{body_part}.AAAAAAAAAAAAAAAA").status_code == 404

    ada = _engaged(client, auth, "ada", 3)
    human = [e for e in ada if not e["changes"]["machine"]]
    machine = [e for e in ada if e["changes"]["machine"]]
    assert {e["type"] for e in human} == {"delivery.opened", "delivery.clicked"}
    (click,) = [e for e in human if e["type"] == "delivery.clicked"]
    assert click["changes"]["link"] == OFFER
    assert click["changes"]["agent"] == "browser"
    (proxy,) = machine
    assert proxy["type"] == "delivery.opened"
    assert proxy["reason"] == "privacy_proxy"

    # Bob's mail filter checks one link with HEAD, then fetches every link at once.
    bob_links = _links(_parts(mails["bob@example.com"])[0])[:2]
    with httpx.Client(headers={"User-Agent": CHROME}) as scanner:
        assert scanner.head(bob_links[0]).status_code == 302
        for link in bob_links:
            assert scanner.get(link).status_code == 302
    # The first machine hit of each link is kept: the HEAD for the first, "all at once" for
    # the second (the GET of the first is a repeat of a machine's hit on it).
    bob = _engaged(client, auth, "bob", 2)
    assert all(e["changes"]["machine"] for e in bob), bob
    assert {e["changes"]["link"]: e["reason"] for e in bob} == {
        OFFER: "head_request",
        GUIDE: "all_links",
    }

    # Other services hear of every one, flagged as on the timeline.
    hooks.wait_for(5, timeout=10)
    payloads = [r.payload for r in hooks.verified]
    assert sorted(p["type"] for p in payloads) == ["delivery.clicked"] * 3 + ["delivery.opened"] * 2
    # The figures count people apart from machines: Ada opened and clicked; Bob's scanner and
    # Ada's proxy count only in "all"; Cy was not tracked, so she is delivered and nothing more.
    figures = ok(client.get(f"/v1/notifications/{sent['id']}", headers=auth))["engagement"]
    assert (figures["delivered"], figures["opened"], figures["clicked"]) == (3, 1, 1)
    assert (figures["opened_all"], figures["clicked_all"]) == (1, 2)
    assert figures["machine_clicks"] == {"all_links": 1, "head_request": 1}
    assert [(link["url"], link["people"]) for link in figures["links"]] == [(OFFER, 1), (GUIDE, 0)]

    # A repeat adds nothing; and once Ada turns tracking off, her old links still lead where
    # they did but nothing more is recorded.
    ok(client.patch("/v1/contacts/ada/preferences", json={"tracking_off": True}, headers=auth))
    with httpx.Client(headers={"User-Agent": CHROME}) as mail_client:
        assert mail_client.get(offer).headers["location"] == OFFER
        assert mail_client.get(guide).headers["location"] == GUIDE
    time.sleep(1.5)
    kinds = [e["type"] for e in timeline(client, auth, "ada")]
    assert kinds.count("delivery.clicked") == 1


def test_a_scanner_spread_over_two_api_processes_is_still_seen_following_every_link(
    wired: Wired, peers: tuple[SmtpPeer, WebhookPeer]
) -> None:
    """Each API process records its own hits; the second link's click, written by the other
    process, finds the first in the database and is flagged."""
    client, auth, base, runtime = wired
    smtp, _ = peers
    topic(client, auth, "offers", category="marketing")
    ok(client.put("/v1/templates/winter", json=TEMPLATE, headers=auth))
    person(client, auth, "eve", email="eve@example.com", subscribe={"offers": ["email"]})
    body = {"topic": "offers", "template": "winter", "recipients": ["eve"]}
    sent = ok(client.post("/v1/notifications", json=body, headers=auth), 202)
    assert settled(client, auth, sent["id"])["counts"] == {"sent": 1}
    first, second = _links(_parts(smtp.wait_for(1)[0].message)[0])[:2]
    other = create_app(runtime=runtime)  # a second API process: its own recorder
    for app in (client.app, other):  # a 2 s window, so the timing below has room on a busy CI
        assert isinstance(app, FastAPI)
        app.state.tracking = Tracking(
            app.state.tracking.links, Recorder(runtime.sessions, too_soon=0)
        )
    with serving(other) as other_base, httpx.Client(headers={"User-Agent": CHROME}) as scanner:
        assert scanner.get(first).status_code == 302
        # Within the window; this process writes its click first (at most 2.25 s after it
        # came), the other no sooner than 2 s after its own, 3 s in.
        time.sleep(1.0)
        assert scanner.get(second.replace(base, other_base)).status_code == 302
        clicks = _engaged(client, auth, "eve", 2)
    by_link = {e["changes"]["link"]: e for e in clicks}
    assert by_link[GUIDE]["changes"]["machine"] is True
    assert by_link[GUIDE]["reason"] == "all_links"


@pytest.fixture
def texting(database_url: str) -> Iterator[tuple[TestClient, dict[str, str], Runtime, TwilioPeer]]:
    with TwilioPeer() as twilio:
        sock, base = listening_socket()
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            public_url=base,
            **peer_settings(twilio=twilio),
            sweep_interval_seconds=0.1,
            tracking_settle_seconds=0.2,
            tracking_too_soon_seconds=0,
        )
        with served(settings, sock) as (client, runtime):
            yield client, make_key(runtime, "shop", Scope.ADMIN), runtime, twilio
        assert twilio.violations == []


def test_sms_links_are_tracked_where_the_topic_says_and_an_erasure_takes_the_clicks(
    texting: tuple[TestClient, dict[str, str], Runtime, TwilioPeer],
) -> None:
    client, auth, runtime, twilio = texting
    sms = {"allowed_channels": ["sms"], "default_channels": ["sms"], "category": "marketing"}
    topic(client, auth, "flash", track_sms=True, **sms)
    topic(client, auth, "plain", **sms)  # tracking on, but not its SMS links
    phones = {"flash": "+14155550104", "plain": "+14155550105"}
    for key, phone in phones.items():
        person(client, auth, f"dan-{key}", phone=phone, subscribe={key: ["sms"]})
        content = {"": {"sms_body": f"Sale today: {OFFER}"}}
        body = {"topic": key, "content": content, "recipients": [f"dan-{key}"]}
        sent = ok(client.post("/v1/notifications", json=body, headers=auth), 202)
        assert settled(client, auth, sent["id"])["counts"] == {"sent": 1}
    bodies = {str(a.form["To"]): str(a.form["Body"]) for a in twilio.accepted}
    assert bodies[phones["plain"]] == f"Sale today: {OFFER}"
    tracked = bodies[phones["flash"]]
    assert OFFER not in tracked
    (link,) = re.findall(r"https?://\S+/t/c/\S+", tracked)
    with httpx.Client(headers={"User-Agent": CHROME}) as phone:
        assert phone.get(link).headers["location"] == OFFER
    clicked = _engaged(client, auth, "dan-flash", 1)
    assert clicked[0]["channel"] == "sms"
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Engagement)) == 1
    assert client.delete("/v1/contacts/dan-flash", headers=auth).status_code in (200, 204)
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Engagement)) == 0
