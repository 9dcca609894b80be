"""Recipients named inline on POST /v1/notifications (issue 19.3), on SQLite and PostgreSQL:
created or changed on the way in, on the timeline with the API key as actor; consent as ever."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.db.models import Capture, Contact, Suppression
from hub.domain import Channel, Scope, SuppressionReason
from hub.runtime import Runtime
from hub.settings import Settings
from tests.conftest import make_key
from tests.dispatching import hub_running, ok, settled, timeline, topic

CONTENT = {"": {"email_subject": "Hello {{ contact.name }}", "email_text": "Hi"}}


@pytest.fixture
def hub(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str], Runtime]]:
    """The API with its workers (the capture sink sends), and a key named `billing`."""
    with hub_running(settings) as (client, runtime):
        admin = make_key(runtime, "admin", Scope.ADMIN, Scope.CONTACTS)
        topic(client, admin, "receipts", category="transactional", required=True)
        topic(client, admin, "offers", category="marketing")
        yield client, make_key(runtime, "billing", Scope.NOTIFY, Scope.CONTACTS), runtime


def _notify(client: TestClient, auth: dict[str, str], recipients: list[Any], **more: Any) -> Any:
    body = {"topic": "receipts", "content": CONTENT, "recipients": recipients} | more
    return client.post("/v1/notifications", json=body, headers=auth)


def _captures(runtime: Runtime) -> list[Capture]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Capture).order_by(Capture.id)))


def test_an_inline_recipient_is_created_with_the_key_as_actor_and_reached(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = hub
    ada = {
        "external_id": "u-42",
        "name": "Ada",
        "email": "Ada@Example.COM",
        "phone": "+44 20 7946 0000",
        "locale": "en_gb",
        "timezone": "Europe/London",
        "attributes": {"plan": "pro"},
    }
    sent = ok(_notify(client, auth, [ada]), 202)

    contact = ok(client.get("/v1/contacts/u-42", headers=auth))
    assert contact["email"] == "Ada@example.com"  # normalised as the contacts API does
    assert (contact["phone"], contact["locale"], contact["kind"]) == (
        "+442079460000",
        "en-GB",
        "client",
    )
    assert contact["attributes"] == {"plan": "pro"}
    (created,) = [e for e in timeline(client, auth, "u-42") if e["type"] == "contact.created"]
    assert (created["actor_kind"], created["actor"], created["source"]) == (
        "api_key",
        "billing",
        "api.notify",
    )
    assert created["changes"]["email"] == {"before": None, "after": "Ada@example.com"}
    assert created["changes"]["attributes.plan"] == {"before": None, "after": "pro"}
    # Transactional, no subscription: the topic's default channel (e-mail), as for any named person.
    assert settled(client, auth, sent["id"])["by_channel"] == {"email": {"sent": 1}}
    assert [(c.to, c.subject) for c in _captures(runtime)] == [("Ada@example.com", "Hello Ada")]


def test_an_existing_recipient_changes_only_the_fields_given(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, _ = hub
    ok(
        client.put(
            "/v1/contacts/u-7",
            json={"name": "Bo", "email": "bo@example.com", "timezone": "Asia/Tokyo",
                  "attributes": {"plan": "free", "seats": 2}},
            headers=auth,
        )
    )  # fmt: skip
    inline = {"external_id": "u-7", "name": "Bo Li", "attributes": {"plan": "pro", "seats": None}}
    ok(_notify(client, auth, [inline]), 202)

    contact = ok(client.get("/v1/contacts/u-7", headers=auth))
    assert (contact["name"], contact["email"], contact["timezone"]) == (
        "Bo Li",
        "bo@example.com",  # not given: kept
        "Asia/Tokyo",  # not given: kept, not reset to the default
    )
    assert contact["attributes"] == {"plan": "pro"}  # merged key by key, null removes
    updated = [e for e in timeline(client, auth, "u-7") if e["type"] == "contact.updated"]
    assert len(updated) == 1
    assert updated[0]["actor"] == "billing"
    assert updated[0]["changes"] == {
        "name": {"before": "Bo", "after": "Bo Li"},
        "attributes.plan": {"before": "free", "after": "pro"},
        "attributes.seats": {"before": 2, "after": None},
    }
    # The same again changes nothing: no second event.
    ok(_notify(client, auth, [inline]), 202)
    again = [e for e in timeline(client, auth, "u-7") if e["type"] == "contact.updated"]
    assert len(again) == 1


def test_a_bad_inline_recipient_is_422_naming_its_place_and_nothing_is_created(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = hub
    answer = _notify(client, auth, ["nobody-yet", {"external_id": "x", "email": "not-an-address"}])
    assert answer.status_code == 422, answer.text
    assert [d["field"] for d in answer.json()["error"]["details"]] == ["recipients[1].email"]
    odd = _notify(client, auth, [{"external_id": "x"}, 7, {"name": "no id"}])
    assert odd.status_code == 422
    assert [d["field"] for d in odd.json()["error"]["details"]] == [
        "recipients[1]",
        "recipients[2].external_id",
    ]
    private = _notify(client, auth, [{"external_id": "x", "webhook_url": "http://127.0.0.1/h"}])
    assert private.status_code == 422
    assert private.json()["error"]["details"][0]["field"] == "recipients[0].webhook_url"
    # A named id that is not a contact is still refused, and the inline one beside it not made.
    missing = _notify(client, auth, ["ghost", {"external_id": "x", "name": "X"}])
    assert missing.status_code == 422
    assert "ghost" in missing.json()["error"]["message"]
    with runtime.sessions() as session:
        assert session.scalar(select(Contact).where(Contact.external_id == "x")) is None


def test_an_id_named_twice_takes_the_later_fields_and_is_told_once(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = hub
    recipients = [
        {"external_id": "u-1", "name": "First", "email": "one@example.com", "attributes": {"a": 1}},
        "u-1",
        {"external_id": "u-1", "name": "Second", "attributes": {"b": 2}},
    ]
    sent = ok(_notify(client, auth, recipients), 202)
    contact = ok(client.get("/v1/contacts/u-1", headers=auth))
    assert (contact["name"], contact["email"]) == ("Second", "one@example.com")
    assert contact["attributes"] == {"a": 1, "b": 2}
    assert [e["type"] for e in timeline(client, auth, "u-1")].count("contact.created") == 1
    assert settled(client, auth, sent["id"])["by_channel"] == {"email": {"sent": 1}}
    assert len(_captures(runtime)) == 1


def test_marketing_does_not_reach_an_inline_recipient_without_a_subscription(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = hub
    person = {"external_id": "u-9", "email": "nine@example.com"}
    offer = ok(_notify(client, auth, [person], topic="offers"), 202)
    receipt = ok(_notify(client, auth, ["u-9"]), 202)

    assert settled(client, auth, offer["id"])["by_channel"].get("email", {}).get("sent") is None
    assert settled(client, auth, receipt["id"])["by_channel"] == {"email": {"sent": 1}}
    assert [c.to for c in _captures(runtime)] == ["nine@example.com"]  # the receipt only


def test_an_erased_id_named_inline_is_a_new_person_whose_old_address_stays_suppressed(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = hub
    ok(client.put("/v1/contacts/u-5", json={"email": "five@example.com"}, headers=auth))
    ok(client.delete("/v1/contacts/u-5", headers=auth))

    ok(_notify(client, auth, [{"external_id": "u-5", "name": "Again"}]), 202)

    with runtime.sessions() as session:
        contact = session.scalar(select(Contact).where(Contact.external_id == "u-5"))
        assert contact is not None
        assert (contact.name, contact.email) == ("Again", None)  # nothing of the erased kept
        erased = session.scalars(
            select(Suppression).where(Suppression.reason == SuppressionReason.ERASURE)
        ).all()
        assert {s.channel for s in erased} == {Channel.EMAIL}
    # The erased person's timeline went with them: only the new person's creation is there.
    changes = [e for e in timeline(client, auth, "u-5") if e["type"].startswith("contact.")]
    assert [(e["type"], e["changes"]["name"]["after"]) for e in changes] == [
        ("contact.created", "Again")
    ]


def test_a_scheduled_notification_is_on_each_named_recipients_timeline(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, _ = hub
    ok(client.put("/v1/contacts/u-2", json={"email": "two@example.com"}, headers=auth))
    now = dt.datetime.now(dt.UTC)
    send_at = (now + dt.timedelta(days=2)).isoformat()
    body = ["u-2", {"external_id": "u-3", "email": "three@example.com"}]
    scheduled = ok(_notify(client, auth, body, send_at=send_at), 202)
    assert scheduled["state"] == "scheduled"
    for person in ("u-2", "u-3"):
        events = [
            e for e in timeline(client, auth, person) if e["type"] == "notification.scheduled"
        ]
        assert len(events) == 1, events
        assert events[0]["changes"]["notification"] == scheduled["id"]
        assert events[0]["changes"]["send_at"].startswith(scheduled["send_at"][:16])
        assert events[0]["actor"] == "billing"
    # An instant too far off is refused, and nobody's timeline hears of it.
    far = _notify(client, auth, ["u-2"], send_at=(now + dt.timedelta(days=400)).isoformat())
    assert far.status_code == 422
    assert far.json()["error"]["details"][0]["field"] == "send_at"
    events = [e for e in timeline(client, auth, "u-2") if e["type"] == "notification.scheduled"]
    assert len(events) == 1


def test_a_key_that_may_only_send_creates_people_but_never_changes_them(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    """A `notify` key without `contacts` may name a new person inline, and an existing one
    with what they already have; re-pointing someone's address is 403 and changes nothing."""
    client, auth, runtime = hub
    sender = make_key(runtime, "sender", Scope.NOTIFY)
    ok(_notify(client, sender, [{"external_id": "u-7", "email": "u7@example.com"}]), 202)
    ok(_notify(client, sender, [{"external_id": "u-7", "email": "u7@example.com"}]), 202)
    hijack = _notify(client, sender, [{"external_id": "u-7", "email": "thief@example.net"}])
    assert hijack.status_code == 403, hijack.text
    error = hijack.json()["error"]
    assert error["code"] == "forbidden"
    assert "contacts" in error["message"]
    assert "email" in error["message"]
    assert error["details"][0]["field"] == "recipients"
    batch = {
        "notifications": [
            {
                "topic": "receipts",
                "content": CONTENT,
                "recipients": [{"external_id": "u-7", "name": "Thief"}],
            }
        ]
    }
    assert client.post("/v1/notifications/batch", json=batch, headers=sender).status_code == 403
    contact = ok(client.get("/v1/contacts/u-7", headers=auth))
    assert (contact["email"], contact["name"]) == ("u7@example.com", None)
    # the key with the contacts scope may change them
    ok(_notify(client, auth, [{"external_id": "u-7", "email": "new@example.com"}]), 202)
    assert ok(client.get("/v1/contacts/u-7", headers=auth))["email"] == "new@example.com"
