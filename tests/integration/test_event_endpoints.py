"""Outbound event webhooks: another service registers an endpoint and hears of deliveries,
bounces, STOPs and unsubscribes, signed (verified by the reference `standardwebhooks`
library in the receiver), retried on a schedule, with a log of every attempt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.app import create_app
from hub.db.models import EventMessage
from hub.domain import ActorKind, EventType, Scope
from hub.runtime import Runtime
from hub.services import timeline
from hub.services.actor import Actor
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import ok, person, settled, topic, wait_for
from tests.peers.smtp import SmtpPeer
from tests.peers.webhooks import WebhookPeer

Wired = tuple[TestClient, dict[str, str], Runtime]
OUTCOMES = ["delivery.sent", "delivery.failed", "suppression.added", "subscription.changed"]
CONTENT = {"": {"email_subject": "Hi", "email_text": "Hello"}}


@pytest.fixture
def receiver() -> Iterator[WebhookPeer]:
    with WebhookPeer() as peer:
        yield peer


@pytest.fixture
def smtp() -> Iterator[SmtpPeer]:
    with SmtpPeer() as peer:
        yield peer


@pytest.fixture
def wired(database_url: str, smtp: SmtpPeer) -> Iterator[Wired]:
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        email_from="news@example.com",
        webhook_allow_private=True,
        sweep_interval_seconds=0.1,
        event_retry_schedule=(0.2, 0.2),
    )
    runtime = Runtime.build(settings)
    workers = Workers(runtime)
    workers.start()
    try:
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            yield client, make_key(runtime, "crm", Scope.ADMIN), runtime
    finally:
        workers.stop()
        runtime.close()


def register(client: TestClient, auth: dict[str, str], url: str, secret: str, **more: Any) -> Any:
    body = {"url": url, "event_types": OUTCOMES, "secret": secret} | more
    return ok(client.post("/v1/event-endpoints", json=body, headers=auth), 201)


def log_of(client: TestClient, auth: dict[str, str], endpoint_id: int, **query: str) -> Any:
    return ok(client.get(f"/v1/event-endpoints/{endpoint_id}/messages", params=query, headers=auth))


def test_a_service_hears_of_sends_bounces_and_unsubscribes(
    wired: Wired, receiver: WebhookPeer, smtp: SmtpPeer
) -> None:
    client, auth, _ = wired
    endpoint = register(client, auth, receiver.url("/crm"), receiver.secret)
    assert endpoint["secret"] == receiver.secret
    assert "secret" not in ok(client.get(f"/v1/event-endpoints/{endpoint['id']}", headers=auth))
    smtp.script("gone@example.com", at="rcpt", reply="550 5.1.1 No such user")
    topic(client, auth, "news")
    person(client, auth, "ann", email="ann@example.com", subscribe={"news": ["email"]})
    person(client, auth, "gone", email="gone@example.com", subscribe={"news": ["email"]})
    receiver.wait_for(2)  # the two subscriptions
    accepted = ok(
        client.post("/v1/notifications", json={"topic": "news", "content": CONTENT}, headers=auth),
        202,
    )
    settled(client, auth, accepted["id"])
    ok(client.delete("/v1/contacts/ann/subscriptions/news", headers=auth))

    def heard() -> list[tuple[str, str]] | None:
        got = [(r.payload["type"], r.payload["data"]["contact"]) for r in receiver.verified]
        return got if len(got) >= 6 else None

    events = sorted(wait_for("six events at the receiver", heard))
    assert events == [
        ("delivery.failed", "gone"),
        ("delivery.sent", "ann"),
        ("subscription.changed", "ann"),
        ("subscription.changed", "ann"),
        ("subscription.changed", "gone"),
        ("suppression.added", "gone"),
    ]
    assert receiver.rejected == []
    by_type = {(r.payload["type"], r.payload["data"]["contact"]): r for r in receiver.verified}
    bounce = by_type[("suppression.added", "gone")].payload["data"]
    assert bounce["channel"] == "email"
    assert bounce["reason"] == "hard_bounce"
    failed = by_type[("delivery.failed", "gone")].payload["data"]
    assert failed["topic"] == "news"
    assert failed["details"]["delivery_id"] > 0
    ids = {r.headers["webhook-id"] for r in receiver.verified}
    assert len(ids) == 6  # one message each, none sent twice

    entries = log_of(client, auth, endpoint["id"])["items"]
    assert {e["state"] for e in entries} == {"delivered"}
    assert {e["webhook_id"] for e in entries} == ids
    one = ok(
        client.get(
            f"/v1/event-endpoints/{endpoint['id']}/messages/{entries[0]['id']}", headers=auth
        )
    )
    (attempt,) = one["attempt_log"]
    assert attempt["status_code"] == 204
    assert attempt["error"] is None


def test_a_failing_endpoint_is_retried_then_given_up_and_can_be_resent(
    wired: Wired, receiver: WebhookPeer
) -> None:
    client, auth, _ = wired
    receiver.answer("/flaky", status=503)
    endpoint = register(
        client, auth, receiver.url("/flaky"), receiver.secret, event_types=["contact.created"]
    )
    person(client, auth, "ann", email="ann@example.com")

    def given_up() -> Any:
        items = log_of(client, auth, endpoint["id"], state="failed")["items"]
        return items[0] if items else None

    message = wait_for("the schedule to run out", given_up)
    assert message["attempts"] == 3  # the first, then one per entry of the schedule
    assert message["last_status"] == 503
    attempts = receiver.received
    assert len(attempts) == 3
    assert {r.headers["webhook-id"] for r in attempts} == {message["webhook_id"]}
    assert all(r.verified for r in attempts)
    log = ok(
        client.get(f"/v1/event-endpoints/{endpoint['id']}/messages/{message['id']}", headers=auth)
    )
    assert [a["status_code"] for a in log["attempt_log"]] == [503, 503, 503]
    assert all("503" in a["error"] for a in log["attempt_log"])

    receiver.answer("/flaky", status=200)
    url = f"/v1/event-endpoints/{endpoint['id']}/messages/{message['id']}/resend"
    assert ok(client.post(url, headers=auth))["state"] == "pending"
    assert client.post(url, headers=auth).status_code == 409  # already on its way
    wait_for(
        "the resend",
        lambda: log_of(client, auth, endpoint["id"], state="delivered")["items"],
    )
    assert len(receiver.received) == 4
    assert receiver.received[-1].headers["webhook-id"] == message["webhook_id"]


def test_an_endpoint_answering_410_is_disabled_until_enabled_again(
    wired: Wired, receiver: WebhookPeer
) -> None:
    client, auth, _ = wired
    receiver.answer("/gone", status=410)
    endpoint = register(
        client, auth, receiver.url("/gone"), receiver.secret, event_types=["contact.created"]
    )
    person(client, auth, "ann", email="ann@example.com")

    def disabled() -> Any:
        body = ok(client.get(f"/v1/event-endpoints/{endpoint['id']}", headers=auth))
        return body if not body["enabled"] else None

    assert "410" in wait_for("the endpoint to be disabled", disabled)["disabled_reason"]
    person(client, auth, "bob", email="bob@example.com")  # not queued while disabled
    assert len(log_of(client, auth, endpoint["id"])["items"]) == 1
    assert len(receiver.received) == 1

    receiver.answer("/gone", status=204)
    enabled = client.patch(
        f"/v1/event-endpoints/{endpoint['id']}", json={"enabled": True}, headers=auth
    )
    assert ok(enabled)["disabled_reason"] is None
    delivered = wait_for(
        "the waiting message",
        lambda: log_of(client, auth, endpoint["id"], state="delivered")["items"],
    )
    assert delivered[0]["payload"]["data"]["contact"] == "ann"


def test_an_event_rolled_back_is_never_announced_and_erasure_takes_the_queue(
    wired: Wired, receiver: WebhookPeer
) -> None:
    client, auth, runtime = wired
    receiver.answer("/slow", status=503)
    endpoint = register(
        client,
        auth,
        receiver.url("/slow"),
        receiver.secret,
        event_types=["contact.updated", "contact.created"],
    )
    person(client, auth, "ann", email="ann@example.com")
    with runtime.sessions() as session:
        contact_id = session.execute(select(func.max(EventMessage.contact_id))).scalar_one()
        timeline.record(
            session,
            contact_id=contact_id,
            type=EventType.CONTACT_UPDATED,
            actor=Actor(kind=ActorKind.SYSTEM, name="test", source="test"),
        )
        assert session.scalar(select(func.count()).select_from(EventMessage)) == 2
        session.rollback()
    with runtime.reads() as session:
        assert session.scalar(select(func.count()).select_from(EventMessage)) == 1

    ok(client.delete("/v1/contacts/ann", headers=auth))
    assert log_of(client, auth, endpoint["id"])["items"] == []


def test_bad_endpoints_get_a_422_naming_the_field(wired: Wired, database_url: str) -> None:
    client, auth, _ = wired
    cases = [
        ({"url": "ftp://x.example.com", "event_types": OUTCOMES}, "url"),
        ({"url": "https://x.example.com", "event_types": []}, "event_types"),
        ({"url": "https://x.example.com", "event_types": ["delivery.teleported"]}, "event_types"),
        ({"url": "https://x.example.com", "event_types": OUTCOMES, "secret": "nope"}, "secret"),
        ({"url": "https://x.example.com", "event_types": OUTCOMES, "extra": 1}, "extra"),
    ]
    for body, field in cases:
        response = client.post("/v1/event-endpoints", json=body, headers=auth)
        assert response.status_code == 422, (body, response.text)
        assert field in response.text
    assert client.get("/v1/event-endpoints/99", headers=auth).status_code == 404
    assert client.get("/v1/event-endpoints/99/messages", headers=auth).status_code == 404


def test_private_endpoints_are_refused_unless_allowed(client: TestClient, runtime: Runtime) -> None:
    auth = make_key(runtime, "crm", Scope.ADMIN)
    for url in ("http://127.0.0.1/hook", "http://10.0.0.1/hook", "http://0x7f000001/hook"):
        response = client.post(
            "/v1/event-endpoints", json={"url": url, "event_types": OUTCOMES}, headers=auth
        )
        assert response.status_code == 422, url
        assert response.json()["error"]["details"][0]["field"] == "url"
    notify = make_key(runtime, "billing", Scope.NOTIFY)
    assert client.get("/v1/event-endpoints", headers=notify).status_code == 403
