"""Quiet hours and digests through the whole dispatch path with a controllable clock, and
contacts in three zones: nothing goes inside a person's quiet hours or outside the legal SMS
window; a deferred message goes out when its window opens, not a moment before; a digest
collects what waited into one message at the person's local digest time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.app import create_app
from hub.db.models import Delivery
from hub.dispatch import sweeper
from hub.domain import Scope
from hub.runtime import Runtime
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import (
    Clock,
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

# 14:30 UTC on 1 July: 23:30 in Tokyo, 16:30 in Berlin, 10:30 in New York, 03:30 in Hawaii.
START = dt.datetime(2026, 7, 1, 14, 30, tzinfo=dt.UTC)
CONTENT = {"": {"email_subject": "Sale", "email_text": "20% off", "sms_body": "20% off"}}


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
    # The peer has the mail a moment before the worker records it: wait for the record.
    wait_for(
        "the delivery recorded as sent",
        lambda: states(client, auth, accepted["id"])["berlin"]["state"] != "sending",
    )
    assert states(client, auth, accepted["id"])["berlin"]["state"] == "sent"


def _digest_of(client: TestClient, auth: dict[str, str], name: str, frequency: str) -> None:
    ok(
        client.put(
            f"/v1/contacts/{name}/subscriptions/weekly-news",
            json={"channels": ["email"], "frequency": frequency},
            headers=auth,
        )
    )


def _news(client: TestClient, auth: dict[str, str], name: str, count: int) -> list[int]:
    ids = []
    for n in range(1, count + 1):
        content = {"": {"email_subject": f"News {n}", "email_text": f"Story number {n}."}}
        body = {"topic": "weekly-news", "content": content, "recipients": [name]}
        ids.append(ok(client.post("/v1/notifications", json=body, headers=auth), 202)["id"])
    for notification_id in ids:
        wait_for(
            "the digest deferral",
            lambda n=notification_id: (
                states(client, auth, n).get(name, {}).get("reason") == "digest"
            ),
        )
    return ids


def test_the_days_messages_arrive_as_one_digest_and_each_is_on_the_timeline(
    wired: Wired,
) -> None:
    client, auth, smtp, _, workers, clock = wired
    _digest_of(client, auth, "berlin", "daily")
    ids = _news(client, auth, "berlin", 3)
    clock.set(dt.datetime(2026, 7, 2, 6, 59, tzinfo=dt.UTC))  # 08:59 in Berlin
    workers.sweep_once()
    assert smtp.received == []
    clock.set(dt.datetime(2026, 7, 2, 7, 0, 3, tzinfo=dt.UTC))
    workers.sweep_once()
    wait_for("the digest", lambda: len(smtp.received) == 1)
    message = smtp.received[0].message
    assert message["Subject"] == "Weekly-News: your daily digest (3 updates)"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for n in (1, 2, 3):
        assert f"{n}. News {n}" in text
        assert f"Story number {n}." in text
        assert f"<h2>News {n}</h2>" in html
    assert text.count("/preferences/") == 1  # one footer, the digest's own
    wait_for(
        "every item sent",
        lambda: all(states(client, auth, i)["berlin"]["state"] == "sent" for i in ids),
    )
    sent = [e for e in timeline(client, auth, "berlin") if e["type"] == "delivery.sent"]
    assert sorted(e["changes"]["notification_id"] for e in sent) == sorted(ids)
    leads = {e["changes"]["digest"]["lead_delivery_id"] for e in sent}
    assert len(leads) == 1
    assert {e["changes"]["digest"]["items"] for e in sent} == {3}
    workers.sweep_once()
    assert len(smtp.received) == 1  # nothing waits any more


def test_a_digest_that_must_be_retried_stays_one_message(wired: Wired) -> None:
    client, auth, smtp, _, workers, clock = wired
    _digest_of(client, auth, "berlin", "daily")
    ids = _news(client, auth, "berlin", 2)
    smtp.script("berlin@example.com", at="rcpt", reply="451 4.3.0 Try again later", times=1)
    clock.set(dt.datetime(2026, 7, 2, 7, 0, 3, tzinfo=dt.UTC))
    workers.sweep_once()
    wait_for(
        "both items waiting to retry",
        lambda: all(
            states(client, auth, i)["berlin"]["state"] == "queued"
            and states(client, auth, i)["berlin"]["attempts"] == 1
            for i in ids
        ),
    )
    retry_at = {states(client, auth, i)["berlin"]["not_before"] for i in ids}
    assert len(retry_at) == 1  # one moment for both: they go together
    clock.set(dt.datetime(2026, 7, 2, 7, 5, tzinfo=dt.UTC))
    workers.sweep_once()
    wait_for("the retried digest", lambda: len(smtp.received) == 1)
    assert "(2 updates)" in smtp.received[0].message["Subject"]


def test_a_persons_own_weekly_time_and_a_stored_digest_template(wired: Wired) -> None:
    """Tokyo chose Fridays at 18:00; the topic has its own digest template."""
    client, auth, smtp, _, workers, clock = wired
    template = {
        "variants": {
            "": {
                "email_subject": "{{ items | length }} stories for {{ contact.external_id }}",
                "email_text": "{% for item in items %}* {{ item.subject }}\n{% endfor %}",
            }
        }
    }
    ok(client.put("/v1/templates/digest-weekly-news", json=template, headers=auth), 200, 201)
    chosen = {"digest": {"time": "18:00", "weekday": "friday"}}
    prefs = ok(client.patch("/v1/contacts/tokyo/preferences", json=chosen, headers=auth))
    assert prefs["digest"] == {"time": "18:00:00", "weekday": "friday"}
    _digest_of(client, auth, "tokyo", "weekly")
    ids = _news(client, auth, "tokyo", 2)
    # Wednesday 23:30 in Tokyo now; Friday 3 July 18:00 there is 09:00 UTC.
    assert states(client, auth, ids[0])["tokyo"]["not_before"].startswith("2026-07-03T09:00:00")
    clock.set(dt.datetime(2026, 7, 3, 8, 59, tzinfo=dt.UTC))
    workers.sweep_once()
    assert smtp.received == []
    clock.set(dt.datetime(2026, 7, 3, 9, 0, 3, tzinfo=dt.UTC))
    workers.sweep_once()
    wait_for("Tokyo's digest", lambda: len(smtp.received) == 1)
    message = smtp.received[0].message
    assert message["Subject"] == "2 stories for tokyo"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "* News 1\n* News 2" in text.replace("\r\n", "\n")


def test_bad_digest_preferences_get_a_422_naming_the_field(wired: Wired) -> None:
    client, auth, *_ = wired
    for bad, field in (
        ({"digest": {"time": "25:00"}}, "digest.time"),
        ({"digest": {"time": "18:00", "weekday": "someday"}}, "digest.weekday"),
        ({"digest": {"time": "18:00+03:00"}}, "digest"),
    ):
        answer = client.patch("/v1/contacts/tokyo/preferences", json=bad, headers=auth)
        assert answer.status_code == 422, bad
        assert field in answer.text, answer.text


def test_a_sweep_cut_short_by_its_limit_still_takes_each_digest_whole(wired: Wired) -> None:
    client, auth, _, _, workers, _ = wired
    for name in ("berlin", "tokyo"):
        _digest_of(client, auth, name, "daily")
        _news(client, auth, name, 3)
    later = dt.datetime(2026, 7, 3, 12, 0, tzinfo=dt.UTC)  # both digest times have passed
    with workers.runtime.sessions() as session, session.begin():
        swept = sweeper.sweep(
            session, now=later, queue_lease=dt.timedelta(minutes=5), batch_size=4, limit=4
        )
    batches = [ids for _, ids in swept.deliver]
    with workers.runtime.sessions() as session:
        found = session.execute(
            select(Delivery.id, Delivery.contact_id).where(
                Delivery.id.in_([i for ids in batches for i in ids])
            )
        )
        owner = {row.id: row.contact_id for row in found}
    people = [{owner[i] for i in ids} for ids in batches]
    # The limit took three items of one person and one of the other: both come whole.
    assert sorted(len(ids) for ids in batches) == [3, 3]
    assert all(len(p) == 1 for p in people)  # never one person's items in two batches
