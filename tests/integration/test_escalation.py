"""Escalation through real peers: e-mail, then SMS, then a voice call. When the SMTP peer
refuses the e-mail the chain moves to SMS at once and to a call when the SMS is not
confirmed in time; when the e-mail is accepted, the later steps stop. Each step is a
delivery of its own on the timeline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.domain import Scope
from hub.settings import Settings
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import (
    hub_running,
    notification,
    ok,
    peer_settings,
    person,
    timeline,
    topic,
    wait_for,
)
from tests.peers.smtp import SmtpPeer
from tests.peers.twilio import TwilioPeer

CONTENT = {
    "": {
        "email_subject": "Your card was blocked",
        "email_text": "Call us",
        "sms_body": "Your card was blocked",
        "voice_say": "Your card was blocked",
    }
}
CHAIN = [
    {"channel": "email"},
    {"channel": "sms", "after_minutes": 0.03},
    {"channel": "voice", "after_minutes": 0.03},
]
Wired = tuple[TestClient, dict[str, str], SmtpPeer, TwilioPeer]


@pytest.fixture
def wired(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wired]:
    monkeypatch.setenv("HUB_TWILIO_RATE_PER_SECOND", "100")
    with SmtpPeer() as smtp, TwilioPeer() as twilio:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            public_url="https://hub.example.com",
            sweep_interval_seconds=0.1,
            **peer_settings(smtp, twilio),
        )
        with hub_running(settings) as (client, runtime):
            auth = make_key(runtime, "cards", Scope.ADMIN)
            topic(
                client,
                auth,
                "alerts",
                required=True,
                bypass_quiet_hours=True,
                allowed_channels=["email", "sms", "voice"],
            )
            for name, number in (("ann", "+14155550141"), ("bob", "+14155550142")):
                person(
                    client,
                    auth,
                    name,
                    email=f"{name}@example.com",
                    phone=number,
                    subscribe={"alerts": ["email", "sms", "voice"]},
                )
            yield client, auth, smtp, twilio
        assert twilio.violations == []


def chain_of(client: TestClient, auth: dict[str, str], notification_id: int) -> Any:
    def settled() -> Any:
        body = notification(client, auth, notification_id)
        items = body["deliveries"]["items"]
        waiting = [d for d in items if d["state"] in {"queued", "sending", "deferred"}]
        return items if len(items) == 6 and not waiting else None

    rows = wait_for("both chains to end", settled, timeout=30)
    return {(d["contact"], d["channel"]): d for d in rows}


def test_a_refused_email_moves_the_chain_on_and_an_accepted_one_stops_it(wired: Wired) -> None:
    client, auth, smtp, twilio = wired
    smtp.script("ann@example.com", at="rcpt", reply="550 5.1.1 No such user")
    accepted = ok(
        client.post(
            "/v1/notifications",
            json={"topic": "alerts", "content": CONTENT, "escalation": CHAIN},
            headers=auth,
        ),
        202,
    )
    chains = chain_of(client, auth, accepted["id"])
    assert chains[("ann", "email")]["state"] == "bounced"
    assert chains[("ann", "sms")]["state"] == "sent"  # sent, but never confirmed delivered
    assert chains[("ann", "voice")]["state"] == "sent"
    assert chains[("bob", "email")]["state"] == "sent"
    assert (chains[("bob", "sms")]["state"], chains[("bob", "sms")]["reason"]) == (
        "suppressed",
        "chain_stopped",
    )
    assert chains[("bob", "voice")]["reason"] == "chain_stopped"
    texts = [a.form["To"] for a in twilio.accepted if a.kind == "message"]
    calls = [a.form["To"] for a in twilio.accepted if a.kind == "call"]
    assert (texts, calls) == (["+14155550141"], ["+14155550141"])
    assert [m.rcpt_tos for m in smtp.received] == [("bob@example.com",)]
    sms_sent = chains[("ann", "sms")]["sent_at"]
    voice_sent = chains[("ann", "voice")]["sent_at"]
    assert voice_sent > sms_sent  # the call waited for the SMS's turn to pass
    kinds = [(e["channel"], e["type"]) for e in timeline(client, auth, "ann")]
    for step in (
        ("email", "delivery.failed"),
        ("sms", "delivery.sent"),
        ("voice", "delivery.sent"),
    ):
        assert step in kinds


def test_a_bad_chain_gets_a_422_naming_the_field(wired: Wired) -> None:
    client, auth, _, _ = wired
    for body, field in (
        ({"escalation": [{"channel": "email"}]}, "escalation"),
        ({"escalation": [{"channel": "email"}, {"channel": "email"}]}, "escalation"),
        ({"escalation": CHAIN, "channels": ["email"]}, "escalation"),
        (
            {"escalation": [{"channel": "email"}, {"channel": "sms", "after_minutes": -1}]},
            "after_minutes",
        ),
        (
            {"escalation": [{"channel": "email"}, {"channel": "sms", "unless": "read"}]},
            "unless",
        ),
        (
            {"escalation": [{"channel": "email", "unless": "opened"}, {"channel": "sms"}]},
            "escalation.0.unless",
        ),
        (
            {"escalation": [{"channel": "voice"}, {"channel": "sms", "unless": "clicked"}]},
            "escalation.1.unless",
        ),
    ):
        answer = client.post(
            "/v1/notifications",
            json={"topic": "alerts", "content": CONTENT} | body,
            headers=auth,
        )
        assert answer.status_code == 422, (body, answer.text)
        assert field in answer.text
