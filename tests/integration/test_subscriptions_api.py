"""Topics, subscriptions and preferences over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.db.models import Contact, ContactEvent, ContactPreferences, Subscription, Topic
from hub.domain import EventType
from hub.preferences.fold import PreferenceChange, fold
from hub.runtime import Runtime


@pytest.fixture
def world(client: TestClient, auth: dict[str, str]) -> None:
    topics = {
        "news": {
            "name": "News",
            "allowed_channels": ["email", "sms", "webhook"],
            "default_channels": ["email", "sms"],
            "allowed_frequencies": ["immediate", "daily", "weekly"],
        },
        "security": {
            "name": "Security",
            "allowed_channels": ["email", "sms"],
            "default_channels": ["email"],
            "required": True,
        },
        "staff-memo": {"name": "Memo", "audience": "employees", "allowed_channels": ["email"]},
    }
    for key, body in topics.items():
        assert client.put(f"/v1/topics/{key}", json=body, headers=auth).status_code == 201
    contact = {"email": "ann@example.com", "phone": "+14155552671", "timezone": "America/Chicago"}
    assert client.put("/v1/contacts/ann", json=contact, headers=auth).status_code == 201
    assert (
        client.put("/v1/contacts/bob", json={"email": "bob@example.com"}, headers=auth).status_code
        == 201
    )


def sub(client: TestClient, auth: dict[str, str], who: str, topic: str, **body: Any) -> Any:
    return client.put(f"/v1/contacts/{who}/subscriptions/{topic}", json=body, headers=auth)


@pytest.mark.usefixtures("world")
def test_subscribe_with_defaults_records_consent(client: TestClient, auth: dict[str, str]) -> None:
    response = sub(client, auth, "ann", "news")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["channels"] == ["email", "sms"]
    assert body["consent_actor"] == "test-service"
    assert body["consent_source"] == "api"
    # Bob has no phone: the defaults he can receive are chosen for him.
    assert sub(client, auth, "bob", "news").json()["channels"] == ["email"]


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize(
    ("who", "topic", "body", "field"),
    [
        ("ann", "news", {"channels": ["voice"]}, "channels[0]"),
        ("bob", "news", {"channels": ["email", "sms"]}, "channels[1]"),
        ("ann", "news", {"channels": ["email", "email"]}, "channels"),
        ("ann", "news", {"channels": []}, "channels"),
        ("ann", "news", {"channels": ["webhook"]}, "channels[0]"),
        ("ann", "security", {"frequency": "daily"}, "frequency"),
        ("ann", "news", {"frequency": "hourly"}, "frequency"),
        ("ann", "news", {"status": "pending"}, "status"),
        ("ann", "staff-memo", {}, "topic"),
    ],
)
def test_bad_subscriptions_get_422_naming_the_field(
    client: TestClient,
    auth: dict[str, str],
    who: str,
    topic: str,
    body: dict[str, Any],
    field: str,
) -> None:
    response = sub(client, auth, who, topic, **body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == field


@pytest.mark.usefixtures("world")
def test_required_topic_cannot_be_unsubscribed_but_channels_can_change(
    client: TestClient, auth: dict[str, str]
) -> None:
    implicit = client.get("/v1/contacts/ann/subscriptions/security", headers=auth).json()
    assert implicit == {**implicit, "implicit": True, "status": "subscribed", "channels": ["email"]}

    refused = client.delete("/v1/contacts/ann/subscriptions/security", headers=auth)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "topic_required"
    assert "required" in refused.json()["error"]["message"]
    assert sub(client, auth, "ann", "security", status="unsubscribed").status_code == 409

    chosen = sub(client, auth, "ann", "security", channels=["sms"])
    assert chosen.status_code == 201
    assert chosen.json()["channels"] == ["sms"]


@pytest.mark.usefixtures("world")
def test_unsubscribe_keeps_the_row_and_the_reason(client: TestClient, auth: dict[str, str]) -> None:
    sub(client, auth, "ann", "news", channels=["sms"], frequency="weekly")
    gone = client.delete("/v1/contacts/ann/subscriptions/news", headers=auth)
    assert gone.status_code == 200
    assert gone.json()["status"] == "unsubscribed"
    assert gone.json()["channels"] == ["sms"]
    listed = client.get("/v1/contacts/ann/subscriptions", headers=auth).json()
    assert {s["topic"]: s["status"] for s in listed} == {
        "news": "unsubscribed",
        "security": "subscribed",
    }
    events = client.get(
        "/v1/contacts/ann/timeline", params={"type": "subscription.changed"}, headers=auth
    ).json()["items"]
    assert events[0]["changes"] == {"status": {"before": "subscribed", "after": "unsubscribed"}}
    assert events[0]["topic"] == "news"


@pytest.mark.usefixtures("world")
def test_topic_filter_lists_only_current_subscribers(
    client: TestClient, auth: dict[str, str]
) -> None:
    sub(client, auth, "ann", "news")
    sub(client, auth, "bob", "news")
    client.delete("/v1/contacts/bob/subscriptions/news", headers=auth)
    listed = client.get("/v1/contacts", params={"topic": "news"}, headers=auth).json()
    assert [c["external_id"] for c in listed["items"]] == ["ann"]


@pytest.mark.usefixtures("world")
def test_preferences_patch_and_validation(client: TestClient, auth: dict[str, str]) -> None:
    url = "/v1/contacts/ann/preferences"
    empty = client.get(url, headers=auth).json()
    assert empty == {
        **empty,
        "blocked_channels": [],
        "quiet_hours": None,
        "unsubscribed_all": False,
    }
    changed = client.patch(
        url,
        json={
            "quiet_hours": {"start": "22:30", "end": "07:00"},
            "blocked_channels": ["voice", "sms", "voice"],
        },
        headers=auth,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["blocked_channels"] == ["sms", "voice"]
    assert changed.json()["quiet_hours"] == {"start": "22:30:00", "end": "07:00:00"}
    assert client.patch(url, json={"unsubscribed_all": True}, headers=auth).json()[
        "quiet_hours"
    ] == {"start": "22:30:00", "end": "07:00:00"}
    cleared = client.patch(url, json={"quiet_hours": None}, headers=auth).json()
    assert cleared["quiet_hours"] is None
    assert cleared["unsubscribed_all"] is True

    for bad, field in [
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "07:00", "end": "07:00"}}, "quiet_hours"),
        ({"blocked_channels": ["pigeon"]}, "blocked_channels[0]"),
        ({"mute": True}, "mute"),
    ]:
        response = client.patch(url, json=bad, headers=auth)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"] == field


@pytest.mark.usefixtures("world")
def test_unknown_topic_or_contact_is_404(client: TestClient, auth: dict[str, str]) -> None:
    assert sub(client, auth, "ann", "nope").status_code == 404
    assert sub(client, auth, "ghost", "news").status_code == 404
    assert (
        client.put(
            "/v1/topics/Bad Key!", json={"name": "x", "allowed_channels": ["email"]}, headers=auth
        ).status_code
        == 422
    )


def test_topic_validation(client: TestClient, auth: dict[str, str]) -> None:
    cases = [
        ({"name": "x", "allowed_channels": []}, "allowed_channels"),
        (
            {"name": "x", "allowed_channels": ["email"], "default_channels": ["sms"]},
            "default_channels",
        ),
        ({"name": "x", "allowed_channels": ["fax"]}, "allowed_channels[0]"),
        ({"allowed_channels": ["email"]}, "name"),
    ]
    for body, field in cases:
        response = client.put("/v1/topics/t", json=body, headers=auth)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"] == field


@pytest.mark.usefixtures("world")
def test_stored_state_equals_the_fold_of_its_events(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """RELIABILITY 15: current preferences can be rebuilt by folding the append-only events."""
    rng = random.Random(7)
    for _ in range(40):
        action = rng.choice(["sub", "unsub", "prefs", "quiet"])
        if action == "sub":
            sub(
                client,
                auth,
                "ann",
                "news",
                channels=rng.sample(["email", "sms"], rng.randint(1, 2)),
                frequency=rng.choice(["immediate", "daily", "weekly"]),
            )
        elif action == "unsub":
            client.delete("/v1/contacts/ann/subscriptions/news", headers=auth)
        elif action == "prefs":
            client.patch(
                "/v1/contacts/ann/preferences",
                headers=auth,
                json={
                    "blocked_channels": rng.sample(["email", "sms", "voice"], rng.randint(0, 2)),
                    "unsubscribed_all": rng.random() < 0.3,
                },
            )
        else:
            quiet = rng.choice([None, {"start": "21:00", "end": "08:00"}])
            client.patch("/v1/contacts/ann/preferences", json={"quiet_hours": quiet}, headers=auth)

    with runtime.sessions() as session:
        contact = session.scalars(select(Contact).where(Contact.external_id == "ann")).one()
        events = session.scalars(
            select(ContactEvent).where(
                ContactEvent.contact_id == contact.id,
                ContactEvent.type.in_(
                    [EventType.SUBSCRIPTION_CHANGED, EventType.PREFERENCES_CHANGED]
                ),
            )
        ).all()
        changes = [
            PreferenceChange(
                occurred_at=e.occurred_at,
                event_id=e.id,
                topic=e.topic_key,
                after={k: v["after"] for k, v in (e.changes or {}).items()},
            )
            for e in events
        ]
        rng.shuffle(changes)
        folded = fold(changes + changes[:5])
        subscription = session.scalars(
            select(Subscription)
            .join(Topic)
            .where(Topic.key == "news", Subscription.contact_id == contact.id)
        ).one_or_none()
        if subscription is not None:
            assert folded.subscriptions["news"] == {
                "status": subscription.status.value,
                "channels": subscription.channels,
                "frequency": subscription.frequency.value,
            }
        prefs = session.get(ContactPreferences, contact.id)
        if prefs is not None:
            quiet = (
                None
                if prefs.quiet_start is None
                else {
                    "start": prefs.quiet_start.isoformat("minutes"),
                    "end": dt.time.isoformat(prefs.quiet_end, "minutes")
                    if prefs.quiet_end
                    else None,
                }
            )
            expected = {
                "blocked_channels": prefs.blocked_channels,
                "quiet_hours": quiet,
                "unsubscribed_all": prefs.unsubscribed_all,
            }
            assert {k: folded.preferences.get(k, expected[k]) for k in expected} == expected
            assert set(folded.preferences) <= set(expected)
