"""A notification through the real channel adapters to real peers on 127.0.0.1.

SMTP (aiosmtpd), the Twilio-compatible server checked against Twilio's OpenAPI, and a webhook
receiver that verifies Standard Webhooks signatures with the reference library.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from email.header import decode_header, make_header
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.db.models import Suppression
from hub.domain import Channel, Scope
from hub.runtime import Runtime
from hub.settings import Settings
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import (
    hub_running,
    notification,
    ok,
    peer_settings,
    person,
    settled,
    timeline,
    topic,
    wait_for,
)
from tests.peers.smtp import SmtpPeer
from tests.peers.twilio import TwilioPeer
from tests.peers.webhooks import WebhookPeer

NEWS = {
    "variants": {
        "": {
            "email_subject": "{{ data.product }} news for {{ contact.name }}",
            "email_html": "<p>Dear {{ contact.name }}, {{ data.product }} is out.</p>",
            "sms_body": "{{ data.product }} is out, {{ contact.name }}",
            "voice_say": "Hello {{ contact.name }}. {{ data.product }} is out.",
            "webhook_json": {
                "event": "release",
                "product": "{{ data.product }}",
                "for": "{{ contact.external_id }}",
            },
        },
        "ru": {
            "email_subject": "Новости {{ data.product }} для {{ contact.name }}",
            "email_html": "<p>{{ contact.name }}, вышел {{ data.product }}.</p>",
            "sms_body": "Вышел {{ data.product }}, {{ contact.name }}",
            "voice_say": "Здравствуйте, {{ contact.name }}. Вышел {{ data.product }}.",
        },
    }
}


@pytest.fixture
def peers() -> Iterator[tuple[SmtpPeer, TwilioPeer, WebhookPeer]]:
    with SmtpPeer() as smtp, TwilioPeer() as twilio, WebhookPeer() as hooks:
        yield smtp, twilio, hooks
        assert twilio.violations == []


@pytest.fixture
def attempts() -> int:
    """Delivery attempts before giving up; a test parametrizes it to see the dead letter."""
    return 8


@pytest.fixture
def wired(
    database_url: str,
    peers: tuple[SmtpPeer, TwilioPeer, WebhookPeer],
    monkeypatch: pytest.MonkeyPatch,
    attempts: int,
) -> Iterator[tuple[TestClient, dict[str, str], Runtime]]:
    smtp, twilio, hooks = peers
    monkeypatch.setenv("HUB_TWILIO_RATE_PER_SECOND", "100")
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        public_url="https://hub.example.com",
        unsubscribe_mailto="unsubscribe@example.com",
        **peer_settings(smtp, twilio) | {"email_from": "Example News <news@example.com>"},
        webhook_secret=hooks.secret,
        webhook_allow_private=True,
        delivery_max_attempts=attempts,
        delivery_first_retry_seconds=0.2,
        sweep_interval_seconds=0.1,
    )
    with hub_running(settings) as (client, runtime):
        auth = make_key(runtime, "release-service", Scope.ADMIN)
        yield client, auth, runtime


def test_one_notification_reaches_every_peer_rendered_per_person_and_locale(
    wired: tuple[TestClient, dict[str, str], Runtime],
    peers: tuple[SmtpPeer, TwilioPeer, WebhookPeer],
) -> None:
    client, auth, _ = wired
    smtp, twilio, hooks = peers
    topic(client, auth, "releases")
    ok(client.put("/v1/templates/release", json=NEWS, headers=auth))
    person(
        client,
        auth,
        "ivan",
        name="Иван Петров",
        locale="ru-RU",
        email="ivan@example.com",
        phone="+14155550111",
        subscribe={"releases": ["email", "sms", "voice"]},
    )
    person(
        client,
        auth,
        "ann",
        name="Ann Lee",
        locale="en-GB",
        email="ann@example.com",
        phone="+14155550112",
        webhook_url=hooks.url("/ann"),
        subscribe={"releases": ["email", "webhook"]},
    )
    request = {"topic": "releases", "template": "release", "data": {"product": "Hub 2"}}
    keyed = auth | {"Idempotency-Key": "release-2"}
    accepted = ok(client.post("/v1/notifications", json=request, headers=keyed), 202)
    body = settled(client, auth, accepted["id"])
    assert body["counts"] == {"sent": 5}, body

    mails = {m.rcpt_tos[0]: m for m in smtp.wait_for(2)}
    ivan, ann = mails["ivan@example.com"].message, mails["ann@example.com"].message
    assert ivan["Subject"] == "Новости Hub 2 для Иван Петров"
    assert str(make_header(decode_header(ivan["To"]))) == "Иван Петров <ivan@example.com>"
    assert ann["Subject"] == "Hub 2 news for Ann Lee"
    assert "Иван Петров, вышел Hub 2." in ivan.get_body(("html",)).get_content()
    assert "Dear Ann Lee, Hub 2 is out." in ann.get_body(("plain",)).get_content()
    unsubscribe = ann["List-Unsubscribe"]
    assert "<https://hub.example.com/unsubscribe/" in unsubscribe
    assert "<mailto:unsubscribe@example.com?subject=unsubscribe" in unsubscribe
    assert ann["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    by_contact = {(d["contact"], d["channel"]): d for d in body["deliveries"]["items"]}
    assert ann["Message-ID"] == by_contact[("ann", "email")]["provider_id"]

    (sms,) = twilio.wait_for(1, kind="message")
    assert sms.form["To"] == "+14155550111"
    assert sms.form["Body"] == "Вышел Hub 2, Иван Петров"
    assert sms.form["StatusCallback"] == "https://hub.example.com/inbound/twilio/status"
    assert by_contact[("ivan", "sms")]["provider_id"] == sms.sid
    (call,) = twilio.wait_for(1, kind="call")
    gather = ET.fromstring(call.form["Twiml"]).find("Gather")
    assert gather is not None
    assert gather.get("action") == "https://hub.example.com/inbound/twilio/voice"
    assert gather.get("numDigits") == "1"
    script, opt_out = gather.findall("Say")
    assert script.get("language") == "ru-RU"
    assert script.text == "Здравствуйте, Иван Петров. Вышел Hub 2."
    assert opt_out.text == "Чтобы больше не получать эти звонки, нажмите 9."

    (hook,) = hooks.wait_for(1)
    assert hook.verified, hook.error
    assert hook.path == "/ann"
    assert hook.payload == {"event": "release", "product": "Hub 2", "for": "ann"}
    keys = client.app.state.runtime.message_keys  # type: ignore[attr-defined]
    ann_hook = by_contact[("ann", "webhook")]["id"]
    assert hook.headers["webhook-id"] == keys.key(accepted["id"], ann_hook, hooks.url("/ann"))

    for external_id, channels in (
        ("ivan", {"email", "sms", "voice"}),
        ("ann", {"email", "webhook"}),
    ):
        sent = [e for e in timeline(client, auth, external_id) if e["type"] == "delivery.sent"]
        assert {e["channel"] for e in sent} == channels

    replay = client.post("/v1/notifications", json=request, headers=keyed)
    assert replay.status_code == 202
    assert replay.json() == accepted
    settled(client, auth, accepted["id"])
    assert len(smtp.received) == 2
    assert len(hooks.received) == 1
    assert len(twilio.accepted) == 2


def test_a_hard_bounce_suppresses_the_address_before_the_next_send(
    wired: tuple[TestClient, dict[str, str], Runtime],
    peers: tuple[SmtpPeer, TwilioPeer, WebhookPeer],
) -> None:
    client, auth, runtime = wired
    smtp, _, _ = peers
    smtp.script("gone@example.com", at="rcpt", reply="550 5.1.1 No such user")
    smtp.script("busy@example.com", at="rcpt", reply="451 4.3.0 Try again later")
    topic(client, auth, "news")
    person(client, auth, "gone", email="gone@example.com", subscribe={"news": ["email"]})
    person(client, auth, "busy", email="busy@example.com", subscribe={"news": ["email"]})
    content = {"": {"email_subject": "Hi", "email_text": "Hello"}}

    first = ok(
        client.post("/v1/notifications", json={"topic": "news", "content": content}, headers=auth),
        202,
    )

    def recorded() -> Any:
        body = notification(client, auth, first["id"])
        states = {d["contact"]: d for d in body["deliveries"]["items"]}
        done = states.get("gone", {}).get("state") == "bounced" and states["busy"]["attempts"] >= 1
        return states if done and states["busy"]["state"] == "queued" else None

    states = wait_for("the bounce and the retry", recorded)
    assert states["gone"]["error_code"] == "550"
    assert states["gone"]["reason"] == "hard_bounce"
    assert states["busy"]["error_code"] == "451"
    with runtime.sessions() as session:
        suppression = session.scalar(
            select(Suppression).where(Suppression.channel == Channel.EMAIL)
        )
    assert suppression is not None
    assert suppression.address == "gone@example.com"
    gone = [e["type"] for e in timeline(client, auth, "gone")]
    assert "delivery.failed" in gone
    assert "suppression.added" in gone
    assert "delivery.retrying" in [e["type"] for e in timeline(client, auth, "busy")]

    second = ok(
        client.post(
            "/v1/notifications",
            json={"topic": "news", "content": content, "recipients": ["gone"]},
            headers=auth,
        ),
        202,
    )
    body = settled(client, auth, second["id"])
    (delivery,) = body["deliveries"]["items"]
    assert delivery["state"] == "suppressed"
    assert delivery["reason"] == "suppressed:hard_bounce"
    assert [m.rcpt_tos for m in smtp.received] == []


def test_a_webhook_is_signed_with_the_configured_secret(
    wired: tuple[TestClient, dict[str, str], Runtime],
    peers: tuple[SmtpPeer, TwilioPeer, WebhookPeer],
) -> None:
    client, auth, _ = wired
    _, _, hooks = peers
    topic(client, auth, "ops")
    person(client, auth, "svc", webhook_url=hooks.url("/svc"), subscribe={"ops": ["webhook"]})
    accepted = ok(
        client.post(
            "/v1/notifications",
            json={"topic": "ops", "content": {"": {"sms_body": "unused"}}, "data": {"n": 1}},
            headers=auth,
        ),
        202,
    )
    settled(client, auth, accepted["id"])
    (hook,) = hooks.wait_for(1)
    assert hook.verified, hook.error
    document = json.loads(hook.body)
    assert document["topic"] == "ops"
    assert document["data"] == {"n": 1}
    assert document["contact"] == {"external_id": "svc"}


@pytest.mark.parametrize("attempts", [1])
def test_a_delivery_that_keeps_failing_is_parked_and_replayed(
    wired: tuple[TestClient, dict[str, str], Runtime],
    peers: tuple[SmtpPeer, TwilioPeer, WebhookPeer],
) -> None:
    client, auth, _ = wired
    smtp, _, _ = peers
    smtp.script("later@example.com", at="rcpt", reply="421 4.7.0 Too busy", times=1)
    topic(client, auth, "news")
    person(client, auth, "later", email="later@example.com", subscribe={"news": ["email"]})
    content = {"": {"email_subject": "Hi", "email_text": "Hello"}}
    accepted = ok(
        client.post("/v1/notifications", json={"topic": "news", "content": content}, headers=auth),
        202,
    )
    body = settled(client, auth, accepted["id"])
    (delivery,) = body["deliveries"]["items"]
    assert delivery["state"] == "failed"
    assert delivery["reason"] == "gave_up"
    (letter,) = ok(client.get("/v1/dead-letters", headers=auth))["items"]
    assert letter["actor"] == "deliver_batch"
    assert letter["args"] == [delivery["id"]]

    ok(client.post(f"/v1/dead-letters/{letter['id']}/replay", headers=auth))
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ("later@example.com",)
    body = settled(client, auth, accepted["id"])
    assert body["deliveries"]["items"][0]["state"] == "sent"


def test_a_webhook_answering_410_is_never_called_again(
    wired: tuple[TestClient, dict[str, str], Runtime],
    peers: tuple[SmtpPeer, TwilioPeer, WebhookPeer],
) -> None:
    client, auth, _ = wired
    _, _, hooks = peers
    hooks.answer("/gone", status=410)
    topic(client, auth, "ops")
    person(client, auth, "svc", webhook_url=hooks.url("/gone"), subscribe={"ops": ["webhook"]})
    request = {"topic": "ops", "content": {"": {"webhook_json": {"n": "{{ data.n }}"}}}}

    first = ok(
        client.post("/v1/notifications", json=request | {"data": {"n": 1}}, headers=auth), 202
    )
    (delivery,) = settled(client, auth, first["id"])["deliveries"]["items"]
    assert delivery["state"] == "failed"
    assert delivery["reason"] == "endpoint_gone"
    second = ok(
        client.post("/v1/notifications", json=request | {"data": {"n": 2}}, headers=auth), 202
    )
    (delivery,) = settled(client, auth, second["id"])["deliveries"]["items"]
    assert delivery["state"] == "suppressed"
    assert delivery["reason"] == "suppressed:endpoint_gone"
    assert len(hooks.received) == 1


REFUSALS = {  # the peer's answer at RCPT -> what the timeline must say
    "later@example.com": ("421 4.7.0 Too busy, come back later", "retried"),
    "greylist@example.com": ("451 4.7.1 Greylisted, try again", "retried"),
    "nobody@example.com": ("550 5.1.1 No such user here", "hard_bounce"),
    "closed@example.com": ("554 No valid recipients", "hard_bounce"),
}


def test_each_recipients_smtp_refusal_lands_on_their_timeline_and_is_honoured_next_time(
    wired: tuple[TestClient, dict[str, str], Runtime],
    peers: tuple[SmtpPeer, TwilioPeer, WebhookPeer],
) -> None:
    """RELIABILITY 4: per recipient, 4xx is retried with backoff until accepted; 5xx is never
    retried and suppresses the address (a hard bounce) before the next send."""
    client, auth, _ = wired
    smtp, _, _ = peers
    topic(client, auth, "news")
    for address, (reply, _) in REFUSALS.items():
        smtp.script(address, at="rcpt", reply=reply, times=1)
        name = address.partition("@")[0]
        person(client, auth, name, email=address, subscribe={"news": ["email"]})
    content = {"": {"email_subject": "Hi", "email_text": "Hello"}}
    request = {"topic": "news", "content": content}
    first = ok(client.post("/v1/notifications", json=request, headers=auth), 202)

    def final() -> Any:
        body = notification(client, auth, first["id"])
        states = {d["contact"]: d for d in body["deliveries"]["items"]}
        busy = [d for d in states.values() if d["state"] in {"queued", "sending"}]
        return states if len(states) == len(REFUSALS) and not busy else None

    states = wait_for("every refusal to be settled", final)
    accepted = {m.rcpt_tos[0] for m in smtp.received}
    for address, (reply, outcome) in REFUSALS.items():
        name = address.partition("@")[0]
        delivery, events = states[name], timeline(client, auth, name)
        kinds = [e["type"] for e in events]
        code = reply[:3]
        if outcome == "retried":
            assert delivery["state"] == "sent", delivery
            assert delivery["attempts"] == 2
            (retry,) = [e for e in events if e["type"] == "delivery.retrying"]
            assert retry["changes"]["code"] == code
            assert address in accepted
        else:
            assert (delivery["state"], delivery["reason"]) == ("bounced", "hard_bounce")
            assert delivery["error_code"] == code
            assert delivery["attempts"] == 1  # never retried
            assert "delivery.failed" in kinds
            (added,) = [e for e in events if e["type"] == "suppression.added"]
            assert added["reason"] == "hard_bounce"
            assert address not in accepted

    second = ok(client.post("/v1/notifications", json=request, headers=auth), 202)
    again = {d["contact"]: d for d in settled(client, auth, second["id"])["deliveries"]["items"]}
    assert again["nobody"]["reason"] == again["closed"]["reason"] == "suppressed:hard_bounce"
    assert again["later"]["state"] == again["greylist"]["state"] == "sent"
    assert len(smtp.received) == 4  # two retried and accepted, then the same two again
