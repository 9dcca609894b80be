"""A person a service names, with no subscription, through the real dispatch path on SQLite and
PostgreSQL (issue 19, item 3): transactional topics reach them on their defaults, marketing does
not, and an unsubscribe from the topic still holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.db.models import Capture
from hub.domain import Scope
from hub.preferences.trace import IMPLIED_CONSENT
from hub.runtime import Runtime
from hub.settings import Settings
from tests.conftest import make_key
from tests.dispatching import hub_running, ok, person, settled, timeline, topic

CONTENT = {"": {"email_subject": "Reset for {{ contact.name }}", "email_text": "Your link"}}


@pytest.fixture
def hub(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str], Runtime]]:
    """The API with its workers (the capture sink sends); a transactional topic people may
    leave, whose default is e-mail although it allows SMS too, and a marketing one."""
    with hub_running(settings) as (client, runtime):
        admin = make_key(runtime, "admin", Scope.ADMIN, Scope.CONTACTS)
        topic(client, admin, "password-reset", category="transactional", required=False)
        topic(client, admin, "offers", category="marketing")
        yield client, make_key(runtime, "accounts", Scope.NOTIFY, Scope.CONTACTS), runtime


def _notify(client: TestClient, auth: dict[str, str], topic_key: str, recipients: list[Any]) -> Any:
    body = {"topic": topic_key, "content": CONTENT, "recipients": recipients}
    return ok(client.post("/v1/notifications", json=body, headers=auth), 202)


def _captured(runtime: Runtime) -> list[tuple[str, str | None]]:
    with runtime.sessions() as session:
        return [(c.to, c.subject) for c in session.scalars(select(Capture).order_by(Capture.id))]


def _refusals(client: TestClient, auth: dict[str, str], external_id: str) -> list[Any]:
    return [e for e in timeline(client, auth, external_id) if e["type"] == "delivery.refused"]


def test_a_named_person_without_a_subscription_gets_a_transactional_topic_on_its_defaults(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = hub
    new = {
        "external_id": "new-1",
        "name": "Ada",
        "email": "ada@example.com",
        "phone": "+14155550101",
    }
    sent = _notify(client, auth, "password-reset", [new])

    body = settled(client, auth, sent["id"])
    # E-mail only: the topic's default, though the person has a phone and SMS is allowed.
    assert body["by_channel"] == {"email": {"sent": 1}}
    assert _captured(runtime) == [("ada@example.com", "Reset for Ada")]
    assert ok(client.get("/v1/contacts/new-1/subscriptions", headers=auth)) == []
    assert _refusals(client, auth, "new-1") == []

    (delivery,) = body["deliveries"]["items"]
    why = ok(client.get(f"/v1/deliveries/{delivery['id']}/explain", headers=auth))
    consent = [r for r in why["rules"] if r["rule"] == "consent"]
    assert consent == [
        {"rule": "consent", "verdict": "pass", "detail": IMPLIED_CONSENT, "channel": None}
    ]
    assert "named by the sender, no subscription needed" in IMPLIED_CONSENT


def test_marketing_to_a_named_person_without_a_subscription_is_refused_on_the_timeline(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = hub
    sent = _notify(client, auth, "offers", [{"external_id": "new-2", "email": "b@example.com"}])

    body = settled(client, auth, sent["id"])
    assert body["by_channel"] == {"email": {"suppressed": 1}}
    (delivery,) = body["deliveries"]["items"]
    assert (delivery["state"], delivery["reason"]) == ("suppressed", "not_subscribed")
    (refused,) = _refusals(client, auth, "new-2")
    assert (refused["channel"], refused["reason"]) == ("email", "not_subscribed")
    assert _captured(runtime) == []


def test_a_topic_wide_transactional_notification_reaches_subscribers_only(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    """Implied consent needs the sender to name the person; a message to the whole topic
    does not go to everyone."""
    client, auth, runtime = hub
    person(client, auth, "stranger", email="stranger@example.com")
    person(
        client, auth, "member", email="member@example.com", subscribe={"password-reset": ["email"]}
    )
    body = {"topic": "password-reset", "content": CONTENT}
    sent = ok(client.post("/v1/notifications", json=body, headers=auth), 202)

    assert settled(client, auth, sent["id"])["by_channel"] == {"email": {"sent": 1}}
    assert [to for to, _ in _captured(runtime)] == ["member@example.com"]


def test_an_unsubscribe_from_the_transactional_topic_still_holds(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = hub
    person(client, auth, "left", email="left@example.com", subscribe={"password-reset": ["email"]})
    ok(client.delete("/v1/contacts/left/subscriptions/password-reset", headers=auth))
    sent = _notify(client, auth, "password-reset", ["left"])

    body = settled(client, auth, sent["id"])
    (delivery,) = body["deliveries"]["items"]
    assert (delivery["state"], delivery["reason"]) == ("suppressed", "unsubscribed")
    (refused,) = _refusals(client, auth, "left")
    assert refused["reason"] == "unsubscribed"
    assert _captured(runtime) == []


def test_unsubscribed_from_everything_still_holds_without_a_subscription(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = hub
    person(client, auth, "quiet", email="quiet@example.com")
    ok(
        client.patch(
            "/v1/contacts/quiet/preferences", json={"unsubscribed_all": True}, headers=auth
        )
    )
    sent = _notify(client, auth, "password-reset", ["quiet"])

    (delivery,) = settled(client, auth, sent["id"])["deliveries"]["items"]
    assert (delivery["state"], delivery["reason"]) == ("suppressed", "unsubscribed_all")
    assert _captured(runtime) == []
