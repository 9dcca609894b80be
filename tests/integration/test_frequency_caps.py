"""Frequency caps through the real dispatch path: counted across topics and channels, per
topic or for the whole hub, held (or dropped) and recorded with their reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.domain import Scope
from hub.runtime import Runtime
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import ok, person, settled, timeline, topic

CONTENT = {"": {"email_subject": "Hi", "email_text": "Hello"}}
Api = tuple[TestClient, dict[str, str]]


@pytest.fixture
def hub_caps() -> dict[str, int]:
    """The hub's own caps; a test parametrizes them."""
    return {}


@pytest.fixture
def api(database_url: str, hub_caps: dict[str, int]) -> Iterator[Api]:
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET, **hub_caps)
    runtime = Runtime.build(settings)
    workers = Workers(runtime)
    workers.start(sweep=False)
    try:
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            auth = make_key(runtime, "marketing", Scope.ADMIN)
            topic(client, auth, "offers", cap_per_day=1)
            topic(client, auth, "promo", cap_per_day=1, cap_action="drop")
            topic(client, auth, "news")
            topic(client, auth, "security", required=True)
            person(
                client,
                auth,
                "ann",
                email="ann@example.com",
                subscribe={"offers": ["email"], "promo": ["email"], "news": ["email"]},
            )
            yield client, auth
    finally:
        workers.stop()
        runtime.close()


def send(client: TestClient, auth: dict[str, str], topic_key: str) -> Any:
    body = {"topic": topic_key, "content": CONTENT, "recipients": ["ann"]}
    accepted = ok(client.post("/v1/notifications", json=body, headers=auth), 202)
    (delivery,) = settled(client, auth, accepted["id"])["deliveries"]["items"]
    return delivery


def test_a_topic_cap_holds_the_next_marketing_message_for_a_day(api: Api) -> None:
    client, auth = api
    first = send(client, auth, "news")  # uncapped topic, but it counts against the others
    assert first["state"] == "sent"
    held = send(client, auth, "offers")
    assert (held["state"], held["reason"]) == ("deferred", "frequency_cap")
    released = dt.datetime.fromisoformat(held["not_before"])
    sent_at = dt.datetime.fromisoformat(first["sent_at"])
    assert dt.timedelta(hours=23) < released - sent_at <= dt.timedelta(days=1)
    dropped = send(client, auth, "promo")
    assert (dropped["state"], dropped["reason"]) == ("suppressed", "frequency_cap")
    assert send(client, auth, "security")["state"] == "sent"  # transactional: never capped
    assert send(client, auth, "news")["state"] == "sent"  # a topic without a cap
    events = {(e["topic"], e["type"], e["reason"]) for e in timeline(client, auth, "ann")}
    assert ("offers", "delivery.deferred", "frequency_cap") in events
    assert ("promo", "delivery.refused", "frequency_cap") in events
    why = ok(client.get(f"/v1/deliveries/{held['id']}/explain", headers=auth))
    cap = next(r for r in why["rules"] if r["rule"] == "frequency_cap")
    assert cap["verdict"] == "defer"


@pytest.mark.parametrize("hub_caps", [{"frequency_cap_per_week": 2}])
def test_the_hubs_own_cap_applies_to_topics_without_one(api: Api) -> None:
    client, auth = api
    assert send(client, auth, "news")["state"] == "sent"
    assert send(client, auth, "news")["state"] == "sent"
    third = send(client, auth, "news")
    assert (third["state"], third["reason"]) == ("deferred", "frequency_cap")


def test_bad_caps_get_a_422_naming_the_field(api: Api) -> None:
    client, auth = api
    for body, field in (
        ({"cap_per_day": 0}, "cap_per_day"),
        ({"cap_per_week": -1}, "cap_per_week"),
        ({"cap_action": "ignore"}, "cap_action"),
    ):
        answer = client.put(
            "/v1/topics/x",
            json={"name": "X", "allowed_channels": ["email"]} | body,
            headers=auth,
        )
        assert answer.status_code == 422
        assert field in answer.text
