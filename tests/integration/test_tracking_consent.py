"""A person's tracking switch over HTTP: `tracking_off` on the preferences API, on their
timeline, and in what the dispatcher loads about them; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from hub.db.base import utcnow
from hub.db.models import Contact, Topic
from hub.dispatch import audience
from hub.runtime import Runtime
from tests.dispatching import ok, person, timeline, topic

URL = "/v1/contacts/{}/preferences"


@pytest.fixture
def people(client: TestClient, auth: dict[str, str]) -> None:
    topic(client, auth, "news", allowed_channels=["email"], default_channels=["email"])
    for who in ("ann", "bob", "cat"):
        person(client, auth, who, email=f"{who}@example.com", subscribe={"news": ["email"]})


def prefs_events(client: TestClient, auth: dict[str, str], who: str) -> list[dict[str, Any]]:
    return [e for e in timeline(client, auth, who) if e["type"] == "preferences.changed"]


@pytest.mark.usefixtures("people")
def test_tracking_off_round_trips_and_each_change_is_on_the_timeline(
    client: TestClient, auth: dict[str, str]
) -> None:
    url = URL.format("ann")
    assert ok(client.get(url, headers=auth))["tracking_off"] is False  # tracked by default

    turned = ok(client.patch(url, json={"tracking_off": True}, headers=auth))
    assert turned["tracking_off"] is True
    assert turned["unsubscribed_all"] is False  # nothing else moved
    assert ok(client.get(url, headers=auth))["tracking_off"] is True
    (off,) = prefs_events(client, auth, "ann")
    assert off["changes"] == {"tracking_off": {"before": False, "after": True}}
    assert off["actor_kind"] == "api_key"

    # Saying it again changes nothing, so the timeline gains nothing.
    assert ok(client.patch(url, json={"tracking_off": True}, headers=auth))["tracking_off"]
    assert len(prefs_events(client, auth, "ann")) == 1

    # Another field leaves the switch where it was; null turns tracking back on.
    kept = ok(client.patch(url, json={"blocked_channels": ["sms"]}, headers=auth))
    assert kept["tracking_off"] is True
    back = ok(client.patch(url, json={"tracking_off": None}, headers=auth))
    assert back["tracking_off"] is False
    on = prefs_events(client, auth, "ann")[0]  # newest first
    assert on["changes"] == {"tracking_off": {"before": True, "after": False}}


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize("value", ["yes", "true", 1, 0, [], {"on": True}])
def test_a_tracking_off_that_is_not_a_boolean_is_422_naming_the_field(
    client: TestClient, auth: dict[str, str], value: Any
) -> None:
    answer = client.patch(URL.format("ann"), json={"tracking_off": value}, headers=auth)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["field"] == "tracking_off"
    assert ok(client.get(URL.format("ann"), headers=auth))["tracking_off"] is False


def test_the_openapi_description_explains_the_switch(client: TestClient) -> None:
    schemas = ok(client.get("/openapi.json"))["components"]["schemas"]
    described = {
        name: schemas[name]["properties"]["tracking_off"].get("description", "")
        for name in schemas
        if name.startswith("Preferences") and "tracking_off" in schemas[name]["properties"]
    }
    assert len(described) >= 2, described  # what PATCH takes and what GET answers
    assert all("pixel" in words and "links" in words for words in described.values())


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def note(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", note)


@pytest.mark.usefixtures("people")
def test_the_dispatcher_reads_the_switch_with_the_preferences_it_already_reads(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    ok(client.patch(URL.format("ann"), json={"tracking_off": True}, headers=auth))
    ok(
        client.patch(
            URL.format("cat"),
            json={"quiet_hours": {"start": "22:00", "end": "06:00"}},
            headers=auth,
        )
    )
    with runtime.sessions() as session:
        ids = list(session.scalars(select(Contact.id).order_by(Contact.id)))
        news = session.scalars(select(Topic.id).where(Topic.key == "news")).one()
        engine = session.get_bind()
        assert isinstance(engine, Engine)
        with counted(engine) as statements:
            loaded = audience.load(session, news, ids, hasher=runtime.hasher, now=utcnow())
    by_name = {r.external_id: r for r in loaded}
    # ann said no; bob has no preferences row at all; cat has one, with tracking left on.
    assert {name: r.tracking_off for name, r in by_name.items()} == {
        "ann": True,
        "bob": False,
        "cat": False,
    }
    assert by_name["cat"].preferences.quiet_hours is not None
    assert len(statements) == 4, statements  # contacts, subscriptions, preferences, refusals
