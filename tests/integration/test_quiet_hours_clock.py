"""Quiet hours through the whole dispatch path with a controllable clock, and contacts in
three zones: nothing goes inside a person's quiet hours or outside the legal SMS window; a
deferred message goes out when its window opens, not a moment before."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.domain import Scope
from hub.runtime import Runtime
from hub.settings import Settings
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import notification, ok, peer_settings, person, topic, wait_for
from tests.peers.smtp import SmtpPeer
from tests.peers.twilio import TwilioPeer
from workers.service import Workers

# 14:30 UTC on 1 July: 23:30 in Tokyo, 16:30 in Berlin, 10:30 in New York, 03:30 in Hawaii.
START = dt.datetime(2026, 7, 1, 14, 30, tzinfo=dt.UTC)
CONTENT = {"": {"email_subject": "Sale", "email_text": "20% off", "sms_body": "20% off"}}


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self.now

    def set(self, now: dt.datetime) -> None:
        with self._lock:
            self.now = now


Wired = tuple[TestClient, dict[str, str], SmtpPeer, TwilioPeer, Workers, Clock]


@pytest.fixture
def wired(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wired]:
    monkeypatch.setenv("HUB_TWILIO_RATE_PER_SECOND", "100")
    clock = Clock(START)
    with SmtpPeer() as smtp, TwilioPeer() as twilio:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            **peer_settings(smtp, twilio),
        )
        runtime = Runtime.build(settings)
        workers = Workers(runtime, clock=clock)
        workers.start(sweep=False)  # the test sweeps, after moving the clock
        try:
            with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
                auth = make_key(runtime, "shop", Scope.ADMIN)
                topic(client, auth, "offers", allowed_channels=["email", "sms"])
                topic(
                    client,
                    auth,
                    "weekly-news",
                    allowed_channels=["email"],
                    allowed_frequencies=["immediate", "daily", "weekly"],
                )
                for name, zone, channels in (
                    ("tokyo", "Asia/Tokyo", ["email"]),
                    ("berlin", "Europe/Berlin", ["email"]),
                    ("honolulu", "Pacific/Honolulu", ["sms"]),
                ):
                    person(
                        client,
                        auth,
                        name,
                        email=f"{name}@example.com",
                        phone="+14155550161",
                        timezone=zone,
                        subscribe={"offers": channels},
                    )
                ok(
                    client.patch(
                        "/v1/contacts/tokyo/preferences",
                        json={"quiet_hours": {"start": "22:00", "end": "07:00"}},
                        headers=auth,
                    )
                )
                yield client, auth, smtp, twilio, workers, clock
        finally:
            workers.stop()
            runtime.close()


def states(client: TestClient, auth: dict[str, str], notification_id: int) -> dict[str, Any]:
    items = notification(client, auth, notification_id)["deliveries"]["items"]
    return {d["contact"]: d for d in items}


def test_each_deferred_message_goes_when_its_own_window_opens(wired: Wired) -> None:
    client, auth, smtp, twilio, workers, clock = wired
    accepted = ok(
        client.post(
            "/v1/notifications", json={"topic": "offers", "content": CONTENT}, headers=auth
        ),
        202,
    )

    def fanned_out() -> Any:
        found = states(client, auth, accepted["id"])
        busy = [d for d in found.values() if d["state"] in {"queued", "sending"}]
        return found if len(found) == 3 and not busy else None

    first = wait_for("the fan-out", fanned_out)
    assert first["berlin"]["state"] == "sent"  # 16:30 there
    tokyo, honolulu = first["tokyo"], first["honolulu"]
    assert (tokyo["state"], tokyo["reason"]) == ("deferred", "quiet_hours")
    assert tokyo["not_before"].startswith("2026-07-01T22:00:00")  # 07:00 in Tokyo
    assert (honolulu["state"], honolulu["reason"]) == ("deferred", "legal_window")
    assert honolulu["not_before"].startswith("2026-07-01T18:00:00")  # 08:00 in Honolulu
    assert [m.rcpt_tos for m in smtp.received] == [("berlin@example.com",)]

    clock.set(dt.datetime(2026, 7, 1, 17, 59, tzinfo=dt.UTC))  # 07:59 in Honolulu
    workers.sweep_once()
    assert twilio.accepted == []

    clock.set(dt.datetime(2026, 7, 1, 18, 0, 5, tzinfo=dt.UTC))  # the SMS window opens
    workers.sweep_once()
    wait_for("the SMS", lambda: states(client, auth, accepted["id"])["honolulu"]["state"] == "sent")
    assert [a.form["To"] for a in twilio.accepted] == ["+14155550161"]
    assert len(smtp.received) == 1  # Tokyo still sleeps

    clock.set(dt.datetime(2026, 7, 1, 21, 59, tzinfo=dt.UTC))  # 06:59 in Tokyo
    workers.sweep_once()
    assert len(smtp.received) == 1
    clock.set(dt.datetime(2026, 7, 1, 22, 0, 5, tzinfo=dt.UTC))  # 07:00:05 in Tokyo
    workers.sweep_once()
    wait_for("the Tokyo e-mail", lambda: len(smtp.received) == 2)
    assert smtp.received[-1].rcpt_tos == ("tokyo@example.com",)
    assert states(client, auth, accepted["id"])["tokyo"]["state"] == "sent"


def test_a_daily_digest_message_waits_for_nine_and_then_goes(wired: Wired) -> None:
    """It used to wait for ever: checked again just after 09:00, it was held for the next
    day's 09:00. A message that waited for its digest time now goes when it comes."""
    client, auth, smtp, _, workers, clock = wired
    ok(
        client.put(
            "/v1/contacts/berlin/subscriptions/weekly-news",
            json={"channels": ["email"], "frequency": "daily"},
            headers=auth,
        )
    )
    body = {"topic": "weekly-news", "content": CONTENT, "recipients": ["berlin"]}
    accepted = ok(client.post("/v1/notifications", json=body, headers=auth), 202)
    held = wait_for(
        "the digest deferral",
        lambda: (
            states(client, auth, accepted["id"]).get("berlin", {}).get("reason") == "digest"
            and states(client, auth, accepted["id"])["berlin"]
        ),
    )
    assert held["not_before"].startswith("2026-07-02T07:00:00")  # 09:00 in Berlin (CEST)
    clock.set(dt.datetime(2026, 7, 2, 6, 59, tzinfo=dt.UTC))
    workers.sweep_once()
    assert smtp.received == []
    clock.set(dt.datetime(2026, 7, 2, 7, 0, 3, tzinfo=dt.UTC))
    workers.sweep_once()
    wait_for("the digest e-mail", lambda: len(smtp.received) == 1)
    assert states(client, auth, accepted["id"])["berlin"]["state"] == "sent"
