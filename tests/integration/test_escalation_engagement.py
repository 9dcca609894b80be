"""Escalation on engagement through the real app over HTTP, the SMTP peer and the
Twilio-compatible peer, on an injected clock: an e-mail, then an SMS 30 minutes later unless
the e-mail was opened (or clicked). The test loads the pixel and follows the link found in
the mail the SMTP peer received, like a mail client: a person's open stops the SMS; Apple
Mail Privacy Protection's fetch of the pixel does not, so that reader still gets it. The
timeline and explain say why each step went or stopped. The default `reached` still stops
the SMS once the mail server accepted the e-mail."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.domain import Scope
from hub.runtime import Runtime
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import notification, ok, peer_settings, person, timeline, topic, wait_for
from tests.integration.test_quiet_hours_clock import Clock
from tests.peers.smtp import SmtpPeer
from tests.peers.twilio import TwilioPeer
from tests.serving import listening_socket, serving

START = dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC)  # 10:00 in Berlin: no quiet hours
WAIT = dt.timedelta(minutes=30)
PARCEL = "https://shop.example.com/parcel"
CONTENT = {
    "": {
        "email_subject": "Your parcel is waiting",
        "email_html": f'<p>Pick it up at <a href="{PARCEL}">the shop</a>.</p>',
        "email_text": f"Pick it up at the shop: {PARCEL}",
        "sms_body": "Your parcel is waiting at the shop",
    }
}
# The same with a picture of its own: its pixel goes in whatever the chain waits for (a short
# mail with none gets a pixel only when a step waits for an open: spam filters read a lone
# pixel as image spam).
PICTURED = {
    "": CONTENT[""]
    | {
        "email_html": CONTENT[""]["email_html"]
        + '<img src="https://shop.example.com/logo.png" alt="">'
    }
}
PHONES = {"ann": "+14155550171", "bob": "+14155550172"}
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
APPLE_MAIL_PROXY = "Mozilla/5.0"  # what Mail Privacy Protection's fetches send, and nothing else


@dataclass
class Wired:
    client: TestClient
    auth: dict[str, str]
    smtp: SmtpPeer
    twilio: TwilioPeer
    workers: Workers
    clock: Clock


@pytest.fixture
def wired(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wired]:
    monkeypatch.setenv("HUB_TWILIO_RATE_PER_SECOND", "100")
    clock = Clock(START)
    sock, base = listening_socket()
    with SmtpPeer() as smtp, TwilioPeer() as twilio:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            public_url=base,  # where the pixel and the tracked links lead
            tracking_settle_seconds=0.2,
            **peer_settings(smtp, twilio),
        )
        runtime = Runtime.build(settings)
        workers = Workers(runtime, clock=clock)
        workers.start(sweep=False)  # the test sweeps, after moving the clock
        app = create_app(runtime=runtime)
        try:
            with serving(app, sock), TestClient(app, raise_server_exceptions=False) as client:
                auth = make_key(runtime, "parcels", Scope.ADMIN)
                topic(
                    client,
                    auth,
                    "parcels",
                    allowed_channels=["email", "sms"],
                    tracking=True,
                )
                for name, phone in PHONES.items():
                    person(
                        client,
                        auth,
                        name,
                        email=f"{name}@example.com",
                        phone=phone,
                        timezone="Europe/Berlin",
                        subscribe={"parcels": ["email", "sms"]},
                    )
                yield Wired(client, auth, smtp, twilio, workers, clock)
        finally:
            workers.stop()
            runtime.close()
        assert twilio.violations == []


def deliveries(w: Wired, notification_id: int) -> dict[tuple[str, str], Any]:
    items = notification(w.client, w.auth, notification_id)["deliveries"]["items"]
    return {(d["contact"], d["channel"]): d for d in items}


def post_chain(
    w: Wired, unless: str | None, content: dict[str, Any] = CONTENT
) -> tuple[int, dict[tuple[str, str], Any]]:
    """The chain posted at START; once both e-mails went and both SMS wait, the rows."""
    sms: dict[str, Any] = {"channel": "sms", "after_minutes": WAIT.total_seconds() / 60}
    if unless is not None:
        sms["unless"] = unless
    body = {"topic": "parcels", "content": content, "escalation": [{"channel": "email"}, sms]}
    accepted = ok(w.client.post("/v1/notifications", json=body, headers=w.auth), 202)

    def first_step_done() -> Any:
        rows = deliveries(w, accepted["id"])
        states = {key: d["state"] for key, d in rows.items()}
        expected = {
            ("ann", "email"): "sent",
            ("bob", "email"): "sent",
            ("ann", "sms"): "deferred",
            ("bob", "sms"): "deferred",
        }
        return rows if states == expected else None

    rows = wait_for("both e-mails sent and both SMS waiting", first_step_done)
    for name in PHONES:
        sms_row = rows[(name, "sms")]
        assert sms_row["reason"] == "escalation"
        assert sms_row["not_before"].startswith((START + WAIT).isoformat()[:19])
    return accepted["id"], rows


def mail_html(w: Wired, name: str) -> str:
    """The HTML part of the e-mail the SMTP peer received for `name`."""
    for received in w.smtp.wait_for(2):
        if received.rcpt_tos == (f"{name}@example.com",):
            html: str = received.message.get_body(("html",)).get_content()
            return html
    raise AssertionError(f"no e-mail for {name}")


def load_pixel(w: Wired, name: str, agent: str) -> None:
    (pixel,) = re.findall(r'<img src="([^"]+/t/o/[^"]+)"', mail_html(w, name))
    answer = httpx.get(pixel, headers={"User-Agent": agent})
    assert answer.headers["content-type"] == "image/gif"


def follow_link(w: Wired, name: str, agent: str) -> None:
    (link,) = [u for u in re.findall(r'href="([^"]+)"', mail_html(w, name)) if "/t/c/" in u]
    answer = httpx.get(link, headers={"User-Agent": agent})
    assert (answer.status_code, answer.headers["location"]) == (302, PARCEL)


def recorded(w: Wired, name: str, kind: str) -> dict[str, Any]:
    """The engagement event the recorder wrote for `name` (it writes within a moment)."""

    def probe() -> dict[str, Any] | None:
        found = [e for e in timeline(w.client, w.auth, name) if e["type"] == kind]
        return found[0] if found else None

    return wait_for(f"{kind} of {name} on the record", probe)


def come_due(w: Wired, notification_id: int) -> dict[tuple[str, str], Any]:
    """A minute before the wait ends nothing goes; a minute after, both SMS are decided."""
    w.clock.set(START + WAIT - dt.timedelta(minutes=1))
    w.workers.sweep_once()
    early = deliveries(w, notification_id)
    assert [early[(name, "sms")]["state"] for name in PHONES] == ["deferred", "deferred"]
    assert w.twilio.accepted == []
    w.clock.set(START + WAIT + dt.timedelta(minutes=1))
    w.workers.sweep_once()

    def decided() -> Any:
        rows = deliveries(w, notification_id)
        waiting = [d for d in rows.values() if d["state"] in {"deferred", "queued", "sending"}]
        return rows if not waiting else None

    return wait_for("both SMS steps to be decided", decided)


def event(w: Wired, name: str, channel: str, kind: str) -> dict[str, Any]:
    (found,) = [
        e for e in timeline(w.client, w.auth, name) if e["channel"] == channel and e["type"] == kind
    ]
    return found


def explained_chain(w: Wired, delivery_id: int) -> list[dict[str, Any]]:
    body = ok(w.client.get(f"/v1/deliveries/{delivery_id}/explain", headers=w.auth))
    chain: list[dict[str, Any]] = body["escalation"]
    return chain


def texted(w: Wired) -> list[str]:
    return [a.form["To"] for a in w.twilio.accepted if a.kind == "message"]


def at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_only_the_person_who_did_not_open_gets_the_sms(wired: Wired) -> None:
    w = wired
    notification_id, rows = post_chain(w, "opened")
    load_pixel(w, "ann", THUNDERBIRD)
    # Bob reads mail in Apple Mail: its privacy proxy fetched the pixel; he never read it.
    load_pixel(w, "bob", APPLE_MAIL_PROXY)
    ann_open = recorded(w, "ann", "delivery.opened")
    bob_open = recorded(w, "bob", "delivery.opened")
    assert (ann_open["changes"]["machine"], bob_open["changes"]["machine"]) == (False, True)
    assert bob_open["reason"] == "privacy_proxy"
    waiting = explained_chain(w, rows[("ann", "sms")]["id"])[1]
    assert (waiting["outcome"], waiting["detail"]) == (
        "waiting",
        "waits until 2026-07-01 08:30:00 UTC, then goes unless a person opened an earlier step",
    )

    after = come_due(w, notification_id)

    ann_sms, bob_sms = after[("ann", "sms")], after[("bob", "sms")]
    assert (ann_sms["state"], ann_sms["reason"]) == ("suppressed", "chain_stopped")
    assert bob_sms["state"] == "sent"
    assert texted(w) == [PHONES["bob"]]

    ann_email, bob_email = rows[("ann", "email")], rows[("bob", "email")]
    stopped = event(w, "ann", "sms", "delivery.refused")["changes"]["escalation"]
    assert (stopped["step"], stopped["unless"], stopped["after_seconds"]) == (1, "opened", 1800)
    stop = stopped["stopped_by"]
    assert (stop["delivery_id"], stop["step"], stop["channel"], stop["what"]) == (
        ann_email["id"],
        0,
        "email",
        "opened",
    )
    assert at(stop["at"]) == at(ann_open["occurred_at"])
    went = event(w, "bob", "sms", "delivery.sent")["changes"]["escalation"]
    assert went == {
        "step": 1,
        "unless": "opened",
        "after_seconds": 1800,
        "waited_seconds": 1800,
        "earlier": [
            {"delivery_id": bob_email["id"], "step": 0, "channel": "email", "state": "sent"}
        ],
    }

    ann_chain = explained_chain(w, ann_sms["id"])
    assert [(s["channel"], s["unless"], s["outcome"]) for s in ann_chain] == [
        ("email", "reached", "first"),
        ("sms", "opened", "stopped"),
    ]
    assert ann_chain[1]["after_seconds"] == 1800
    opened = at(ann_open["occurred_at"]).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert ann_chain[1]["detail"] == f"stopped: opened at {opened} (the e-mail, step 0)"
    bob_chain = explained_chain(w, bob_email["id"])  # any delivery of his shows his chain
    assert [s["outcome"] for s in bob_chain] == ["first", "went"]
    assert bob_chain[1]["detail"] == "went: the e-mail was not opened within 30 minutes"


def test_clicked_waits_for_a_click_and_an_open_is_not_enough(wired: Wired) -> None:
    w = wired
    notification_id, _ = post_chain(w, "clicked", PICTURED)
    follow_link(w, "ann", FIREFOX)
    load_pixel(w, "bob", THUNDERBIRD)
    ann_click = recorded(w, "ann", "delivery.clicked")
    assert recorded(w, "bob", "delivery.opened")["changes"]["machine"] is False
    assert ann_click["changes"]["machine"] is False

    after = come_due(w, notification_id)

    assert after[("ann", "sms")]["reason"] == "chain_stopped"
    assert after[("bob", "sms")]["state"] == "sent"
    assert texted(w) == [PHONES["bob"]]
    stop = event(w, "ann", "sms", "delivery.refused")["changes"]["escalation"]["stopped_by"]
    assert stop["what"] == "clicked"
    assert at(stop["at"]) == at(ann_click["occurred_at"])
    bob_chain = explained_chain(w, after[("bob", "sms")]["id"])
    assert bob_chain[1]["detail"] == "went: the e-mail had no link followed within 30 minutes"


def test_reached_by_default_stops_the_sms_once_the_email_was_accepted(wired: Wired) -> None:
    w = wired
    notification_id, rows = post_chain(w, None)

    after = come_due(w, notification_id)

    assert [after[(name, "sms")]["reason"] for name in PHONES] == ["chain_stopped"] * 2
    assert texted(w) == []
    stop = event(w, "bob", "sms", "delivery.refused")["changes"]["escalation"]
    assert stop["unless"] == "reached"
    assert (stop["stopped_by"]["what"], stop["stopped_by"]["delivery_id"]) == (
        "accepted",
        rows[("bob", "email")]["id"],
    )
    chain = explained_chain(w, after[("bob", "sms")]["id"])
    assert chain[1]["detail"].startswith("stopped: accepted by the provider at ")
