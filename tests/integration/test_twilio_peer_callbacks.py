"""The Twilio-compatible peer calls the hub back over real HTTP, as Twilio does: status
callbacks for every message and call, inbound texts and keypresses, each signed with
X-Twilio-Signature over the hub's public URL; and forged and replayed copies of them.

Every refusal lands on the person's timeline with its reason, and the next notification
skips the refused channel, recorded as suppressed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.app import create_app
from hub.db.models import EarlyCallback
from hub.domain import Scope
from hub.runtime import Runtime
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import PUBLIC_URL, ok, person, settled, timeline, topic, wait_for
from tests.peers import twilio
from tests.peers.twilio import TwilioPeer
from tests.serving import serving

HUB_NUMBER = "+15005550006"
SMS_WEBHOOK = f"{PUBLIC_URL}/inbound/twilio/sms"
CONTENT = {"": {"sms_body": "Your parcel is on its way", "voice_say": "Your parcel is coming"}}


@dataclass
class Live:
    client: TestClient
    auth: dict[str, str]
    peer: TwilioPeer
    runtime: Runtime

    def notify(self, *recipients: str, channels: list[str] | None = None) -> Any:
        body: dict[str, Any] = {"topic": "parcels", "content": CONTENT}
        body |= {"recipients": list(recipients)} if recipients else {}
        body |= {"channels": channels} if channels else {}
        accepted = ok(self.client.post("/v1/notifications", json=body, headers=self.auth), 202)
        return settled(self.client, self.auth, accepted["id"])

    def deliveries(self, notification: Any) -> dict[tuple[str, str], Any]:
        return {(d["contact"], d["channel"]): d for d in notification["deliveries"]["items"]}

    def reached(self, notification_id: int, count: int) -> dict[tuple[str, str], Any]:
        """Wait until `count` deliveries of the notification have their final report."""

        def probe() -> dict[tuple[str, str], Any] | None:
            body = ok(self.client.get(f"/v1/notifications/{notification_id}", headers=self.auth))
            final = {"delivered", "failed"}
            done = [d for d in body["deliveries"]["items"] if d["state"] in final]
            return self.deliveries(body) if len(done) >= count else None

        return wait_for(f"{count} reports of notification {notification_id}", probe)


@pytest.fixture
def live(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    monkeypatch.setenv("HUB_TWILIO_RATE_PER_SECOND", "100")
    monkeypatch.setenv("HUB_TWILIO_MACHINE_DETECTION", "true")
    with TwilioPeer(auth_token="live-callback-token") as peer:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            public_url=PUBLIC_URL,
            twilio_account_sid=peer.account_sid,
            twilio_auth_token=peer.auth_token,
            twilio_from=HUB_NUMBER,
            twilio_base_url=peer.url,
            sweep_interval_seconds=0.2,
        )
        runtime = Runtime.build(settings)
        workers = Workers(runtime)
        workers.start()
        app = create_app(runtime=runtime)
        try:
            with serving(app) as base:
                peer.hub = base
                client = TestClient(app, raise_server_exceptions=False)
                auth = make_key(runtime, "parcels", Scope.ADMIN)
                topic(client, auth, "parcels", default_channels=["sms"])
                yield Live(client, auth, peer, runtime)
        finally:
            workers.stop()
            runtime.close()
        assert peer.violations == []


def test_statuses_from_the_peer_move_sms_and_calls_to_delivered(live: Live) -> None:
    person(
        live.client,
        live.auth,
        "ivan",
        phone="+14155550101",
        subscribe={"parcels": ["sms", "voice"]},
    )
    sent = live.notify()
    states = live.reached(sent["id"], 2)
    assert states[("ivan", "sms")]["state"] == "delivered"
    assert states[("ivan", "voice")]["state"] == "delivered"
    assert states[("ivan", "voice")]["reason"] is None  # a person answered
    callbacks = live.peer.wait_for_callbacks(6)  # sent, delivered; the call's four steps
    assert {c.status for c in callbacks} == {204}
    (call,) = live.peer.wait_for(1, kind="call")
    assert call.form["MachineDetection"] == "Enable"
    kinds = [e["type"] for e in timeline(live.client, live.auth, "ivan")]
    assert kinds.count("delivery.delivered") == 2
    with live.runtime.reads() as session:
        # Callbacks that came before their SID was recorded were applied, not left waiting.
        assert session.scalar(select(func.count()).select_from(EarlyCallback)) == 0


def test_statuses_that_overtake_the_send_wait_for_it(live: Live) -> None:
    """Twilio's "delivered" may arrive before the worker has recorded the SID it was given;
    the hub keeps it until the SID is recorded, then applies it."""
    live.peer.report_before_answer = True
    person(live.client, live.auth, "ivan", phone="+14155550101", subscribe={"parcels": ["sms"]})
    sent = live.notify()
    assert [c.status for c in live.peer.callbacks] == [204, 204]  # before the SID was known
    states = live.reached(sent["id"], 1)
    assert states[("ivan", "sms")]["state"] == "delivered"
    delivered = [
        e for e in timeline(live.client, live.auth, "ivan") if e["type"] == "delivery.delivered"
    ]
    assert len(delivered) == 1
    with live.runtime.reads() as session:
        assert session.scalar(select(func.count()).select_from(EarlyCallback)) == 0


def test_refusals_reported_by_the_peer_land_on_the_timeline_and_are_skipped_next_time(
    live: Live,
) -> None:
    numbers = {
        "olga": "+14155550111",  # the carrier says she replied STOP to us: 21610
        "petr": "+14155550112",  # a handset that is off for good: 30003
        "anna": "+14155550113",  # busy
        "igor": "+14155550114",  # an answering machine picks up
    }
    live.peer.outcome(numbers["olga"], twilio.carrier_opt_out())
    live.peer.outcome(numbers["petr"], twilio.undelivered(30003))
    live.peer.outcome(numbers["anna"], twilio.call_ended("busy"))
    live.peer.outcome(numbers["igor"], twilio.machine())
    for name, number in numbers.items():
        channel = "sms" if name in {"olga", "petr"} else "voice"
        person(live.client, live.auth, name, phone=number, subscribe={"parcels": [channel]})
    first = live.notify()
    states = live.reached(first["id"], 4)
    assert (states[("olga", "sms")]["state"], states[("olga", "sms")]["error_code"]) == (
        "failed",
        "21610",
    )
    assert states[("petr", "sms")]["reason"] == "twilio:undelivered"
    assert states[("petr", "sms")]["error_code"] == "30003"
    assert states[("anna", "voice")]["reason"] == "twilio:busy"
    assert states[("igor", "voice")]["state"] == "delivered"
    assert states[("igor", "voice")]["reason"] == "answered_by:machine_start"

    olga = timeline(live.client, live.auth, "olga")
    added = [e for e in olga if e["type"] == "suppression.added"]
    assert [e["reason"] for e in added] == ["carrier_opt_out"]
    failed = [e for e in olga if e["type"] == "delivery.failed"]
    assert failed[0]["changes"]["error_code"] == "21610"

    again = live.notify("olga", "petr")
    states = live.deliveries(again)
    assert states[("olga", "sms")]["state"] == "suppressed"
    assert states[("olga", "sms")]["reason"] == "suppressed:carrier_opt_out"
    assert states[("petr", "sms")]["state"] != "suppressed"  # undelivered is no opt-out
    sent_to = [a.form["To"] for a in live.peer.accepted if a.kind == "message"]
    assert sent_to.count(numbers["olga"]) == 1
    assert sent_to.count(numbers["petr"]) == 2


def test_forged_and_replayed_callbacks_change_nothing(live: Live) -> None:
    person(live.client, live.auth, "ivan", phone="+14155550101", subscribe={"parcels": ["sms"]})
    sent = live.notify()
    live.reached(sent["id"], 1)
    first, delivered = live.peer.wait_for_callbacks(2)
    assert (first.params["MessageStatus"], delivered.params["MessageStatus"]) == (
        "sent",
        "delivered",
    )
    before = timeline(live.client, live.auth, "ivan")

    assert live.peer.replay(first).status == 204  # a late, duplicate "sent"
    assert live.peer.replay(delivered).status == 204
    tampered = live.peer.forge(delivered, MessageStatus="undelivered", ErrorCode="21610")
    assert tampered.status == 403
    unsigned = live.peer.forge(delivered, signature="", MessageStatus="failed")
    assert unsigned.status == 403
    other_key = twilio.sign("not-the-token", delivered.url, delivered.params)
    assert live.peer.forge(delivered, signature=other_key).status == 403

    state = ok(live.client.get(f"/v1/notifications/{sent['id']}", headers=live.auth))
    assert state["deliveries"]["items"][0]["state"] == "delivered"
    assert timeline(live.client, live.auth, "ivan") == before
    suppressions = ok(live.client.get("/v1/suppressions", headers=live.auth))["items"]
    assert suppressions == []


def test_texts_from_the_peer_stop_and_restart_sms_and_a_replay_cannot_undo_a_stop(
    live: Live,
) -> None:
    number = "+14155550121"
    person(live.client, live.auth, "olga", phone=number, subscribe={"parcels": ["sms"]})
    stop = live.peer.text_hub(SMS_WEBHOOK, sender=number, to=HUB_NUMBER, body=" Stop ")
    assert stop.status == 200
    skipped = live.deliveries(live.notify())
    assert skipped[("olga", "sms")]["reason"] == "suppressed:sms_stop"

    start = live.peer.text_hub(SMS_WEBHOOK, sender=number, to=HUB_NUMBER, body="START")
    assert start.status == 200
    resumed = live.notify()
    assert live.deliveries(resumed)[("olga", "sms")]["state"] in {"sent", "delivered"}

    again = live.peer.text_hub(SMS_WEBHOOK, sender=number, to=HUB_NUMBER, body="stopall")
    assert again.status == 200
    assert live.peer.replay(start).status == 200  # answered, and acted on only once
    forged = live.peer.forge(stop, Body="START")
    assert forged.status == 403
    held = live.deliveries(live.notify())
    assert held[("olga", "sms")]["reason"] == "suppressed:sms_stop"

    help_answer = live.peer.text_hub(SMS_WEBHOOK, sender=number, to=HUB_NUMBER, body="help")
    assert "<Message>" in help_answer.text
    olga = timeline(live.client, live.auth, "olga")
    texts = [e["reason"] for e in olga if e["type"] == "inbound.message"]
    assert texts == ["stop", "start", "stop"]  # newest first; HELP is not kept


def test_pressing_9_during_the_peers_call_stops_the_next_call(live: Live) -> None:
    number = "+14155550131"
    person(live.client, live.auth, "anna", phone=number, subscribe={"parcels": ["voice"]})
    live.notify()
    (call,) = live.peer.wait_for(1, kind="call")
    assert live.peer.press(call, "1").status == 200  # another key: nothing
    pressed = live.peer.press(call, "9")
    assert pressed.status == 200
    assert "<Hangup" in pressed.text
    assert live.peer.forge(pressed, To="+14155550199").status == 403

    skipped = live.deliveries(live.notify())
    assert skipped[("anna", "voice")]["state"] == "suppressed"
    assert skipped[("anna", "voice")]["reason"] == "suppressed:voice_opt_out"
    added = [
        e
        for e in timeline(live.client, live.auth, "anna")
        if e["type"] == "suppression.added" and e["channel"] == "voice"
    ]
    assert [e["reason"] for e in added] == ["voice_opt_out"]
    assert len(live.peer.wait_for(1, kind="call")) == 1
