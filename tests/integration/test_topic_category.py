"""A topic's category through the API and the whole dispatch path: marketing rules (the legal
SMS window, frequency caps, an erasure's suppression) follow the category; `required` only
says whether people may unsubscribe. Every change to a topic is in the staff audit log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.domain import Scope
from hub.runtime import Runtime
from hub.services import audit
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import notification, ok, peer_settings, person, wait_for
from tests.integration.test_quiet_hours_clock import Clock
from tests.peers.smtp import SmtpPeer
from tests.peers.twilio import TwilioPeer

# 22:17 UTC on 1 July is 00:17 on 2 July in Berlin (CEST, UTC+2); 08:00 there is 06:00 UTC.
NIGHT = dt.datetime(2026, 7, 1, 22, 17, tzinfo=dt.UTC)
EIGHT_IN_BERLIN = dt.datetime(2026, 7, 2, 6, 0, tzinfo=dt.UTC)
SHIPPED = {"": {"email_subject": "Shipped", "email_text": "On its way", "sms_body": "Shipped!"}}


@pytest.fixture
def hub(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, dict[str, str], Runtime, Workers, Clock, SmtpPeer, TwilioPeer]]:
    monkeypatch.setenv("HUB_TWILIO_RATE_PER_SECOND", "100")
    clock = Clock(NIGHT)
    with SmtpPeer() as smtp, TwilioPeer() as twilio:
        settings = Settings(
            database_url=database_url, secret_key=TEST_SECRET, **peer_settings(smtp, twilio)
        )
        runtime = Runtime.build(settings)
        workers = Workers(runtime, clock=clock)
        workers.start(sweep=False)  # the test sweeps, after moving the clock
        try:
            with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
                auth = make_key(runtime, "shop", Scope.ADMIN)
                yield client, auth, runtime, workers, clock, smtp, twilio
        finally:
            workers.stop()
            runtime.close()


Hub = tuple[TestClient, dict[str, str], Runtime, Workers, Clock, SmtpPeer, TwilioPeer]


def put_topic(client: TestClient, auth: dict[str, str], key: str, **fields: Any) -> Any:
    body = {"name": key.title(), "allowed_channels": ["email", "sms"]} | fields
    return client.put(f"/v1/topics/{key}", json=body, headers=auth)


def post(client: TestClient, auth: dict[str, str], topic: str, who: str) -> int:
    body = {"topic": topic, "content": SHIPPED, "recipients": [who]}
    accepted: int = ok(client.post("/v1/notifications", json=body, headers=auth), 202)["id"]
    return accepted


def delivery(client: TestClient, auth: dict[str, str], notification_id: int) -> Any:
    """The one delivery, once fan-out and any send have settled."""

    def probe() -> Any:
        body = notification(client, auth, notification_id)
        items = body["deliveries"]["items"]
        busy = [d for d in items if d["state"] in {"queued", "sending"}]
        return items[0] if body["state"] == "fanned_out" and items and not busy else None

    return wait_for(f"notification {notification_id} to settle", probe)


def test_the_category_defaults_from_required_and_is_answered_and_filtered(hub: Hub) -> None:
    client, auth, *_ = hub
    assert ok(put_topic(client, auth, "offers"), 201)["category"] == "marketing"
    assert ok(put_topic(client, auth, "reset", required=True), 201)["category"] == "transactional"
    orders = ok(put_topic(client, auth, "orders", category="transactional"), 201)
    assert (orders["category"], orders["required"]) == ("transactional", False)
    assert ok(client.get("/v1/topics/orders", headers=auth))["category"] == "transactional"
    # PUT replaces every field: left out again, the category takes its default.
    assert ok(put_topic(client, auth, "orders"), 200)["category"] == "marketing"
    ok(put_topic(client, auth, "orders", category="transactional"), 200)

    listed = ok(client.get("/v1/topics", params={"category": "transactional"}, headers=auth))
    assert sorted(t["key"] for t in listed["items"]) == ["orders", "reset"]
    listed = ok(client.get("/v1/topics", params={"category": "marketing"}, headers=auth))
    assert [t["key"] for t in listed["items"]] == ["offers"]
    bad_filter = client.get("/v1/topics", params={"category": "spam"}, headers=auth)
    assert bad_filter.status_code == 422
    assert "category" in bad_filter.text

    for fields in ({"category": "marketing", "required": True}, {"category": "promotional"}):
        refused = put_topic(client, auth, "bad", **fields)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert "category" in str(error["details"]), error
    assert client.get("/v1/topics/bad", headers=auth).status_code == 404

    spec = client.get("/openapi.json").json()
    put = spec["paths"]["/v1/topics/{key}"]["put"]
    assert put["operationId"] == "topics.upsert"
    assert put["summary"]
    assert put["description"]
    field = spec["components"]["schemas"]["TopicIn"]["properties"]["category"]
    assert "unless `required` is true" in field["description"]


def test_every_change_is_in_the_audit_log_with_what_changed(hub: Hub) -> None:
    client, auth, runtime, *_ = hub
    ok(put_topic(client, auth, "orders", category="transactional"), 201)
    ok(put_topic(client, auth, "orders", category="transactional"), 200)  # changes nothing
    ok(put_topic(client, auth, "orders", category="transactional", cap_per_day=3), 200)
    with runtime.reads() as session:
        entries = audit.page(
            session, before_id=None, limit=10, resource=audit.Resource.TOPIC, key="orders"
        )
        got = [(e.action, e.actor_kind, e.actor, e.before, e.after) for e in entries]
    assert len(got) == 2, got  # newest first; the PUT that changed nothing left no entry
    updated, created = got
    assert created[:3] == ("created", "api_key", "shop")
    assert created[3] is None
    after = created[4] or {}
    assert after["category"] == "transactional"
    assert after["allowed_channels"] == ["email", "sms"]
    assert updated[:3] == ("updated", "api_key", "shop")
    assert (updated[3], updated[4]) == ({"cap_per_day": None}, {"cap_per_day": 3})


def test_an_order_sms_at_night_goes_at_once_and_marketing_waits_for_eight(hub: Hub) -> None:
    """The issue's case: an order-shipped SMS on an optional topic posted at 00:17 local."""
    client, auth, _, workers, clock, _, twilio = hub
    ok(put_topic(client, auth, "orders", category="transactional"), 201)
    ok(put_topic(client, auth, "offers"), 201)
    person(
        client,
        auth,
        "eva",
        phone="+14155550188",
        timezone="Europe/Berlin",
        subscribe={"orders": ["sms"], "offers": ["sms"]},
    )
    shipped = delivery(client, auth, post(client, auth, "orders", "eva"))
    assert shipped["state"] == "sent", shipped
    assert [a.form["Body"] for a in twilio.accepted] == ["Shipped!"]

    offer = delivery(client, auth, post(client, auth, "offers", "eva"))
    assert (offer["state"], offer["reason"]) == ("deferred", "legal_window")
    assert dt.datetime.fromisoformat(offer["not_before"]) == EIGHT_IN_BERLIN
    explained = ok(
        client.get(
            "/v1/contacts/eva/explain",
            params={"topic": "orders", "at": NIGHT.isoformat()},
            headers=auth,
        )
    )
    assert [r["rule"] for r in explained["rules"] if r["rule"] == "legal_window"] == []
    assert explained["outcome"]["send_now"] == ["sms"]

    clock.set(EIGHT_IN_BERLIN - dt.timedelta(minutes=1))
    workers.sweep_once()
    assert len(twilio.accepted) == 1
    clock.set(EIGHT_IN_BERLIN + dt.timedelta(seconds=5))
    workers.sweep_once()
    wait_for("the offer at eight", lambda: len(twilio.accepted) == 2)


def test_only_marketing_counts_against_and_is_held_by_a_cap(hub: Hub) -> None:
    client, auth, _, _, clock, smtp, _ = hub
    clock.set(dt.datetime.now(dt.UTC))  # the rolling windows count rows made now
    ok(put_topic(client, auth, "orders", category="transactional", cap_per_day=1), 201)
    ok(put_topic(client, auth, "offers", cap_per_day=1), 201)
    subscribe = {"orders": ["email"], "offers": ["email"]}
    person(client, auth, "ann", email="ann@example.com", subscribe=subscribe)
    for _ in range(2):  # a capped transactional topic is not held by its cap...
        assert delivery(client, auth, post(client, auth, "orders", "ann"))["state"] == "sent"
    # ...nor do its messages count against marketing's: the first offer of the day goes.
    assert delivery(client, auth, post(client, auth, "offers", "ann"))["state"] == "sent"
    held = delivery(client, auth, post(client, auth, "offers", "ann"))
    assert (held["state"], held["reason"]) == ("deferred", "frequency_cap")
    assert len(smtp.received) == 3
    # Mail on a topic people may leave offers List-Unsubscribe, transactional or not.
    assert all("/unsubscribe/" in m.message["List-Unsubscribe"] for m in smtp.received)


def test_an_erasure_stops_marketing_but_not_order_updates(hub: Hub) -> None:
    client, auth, *_ = hub
    ok(put_topic(client, auth, "orders", category="transactional"), 201)
    ok(put_topic(client, auth, "offers"), 201)
    person(client, auth, "ada", email="ada@example.com", subscribe={"offers": ["email"]})
    ok(client.delete("/v1/contacts/ada", headers=auth))
    # The address comes back with a new contact who asks for both again.
    person(
        client,
        auth,
        "ada-again",
        email="ada@example.com",
        subscribe={"offers": ["email"], "orders": ["email"]},
    )

    def outcome(topic: str) -> Any:
        answer = client.get(
            "/v1/contacts/ada-again/explain",
            params={"topic": topic, "at": "2026-07-02T10:00:00Z"},
            headers=auth,
        )
        return ok(answer)["outcome"]

    assert outcome("orders")["send_now"] == ["email"]
    refused = outcome("offers")["refused"]
    assert [(r["channel"], r["detail"]) for r in refused] == [("email", "erasure")], refused
