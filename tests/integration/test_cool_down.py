"""Cool-down: a person's STOP lifted by staff or a service still holds the number for
HUB_COOL_DOWN_DAYS after the STOP; the person's own START lifts it at once. Likewise a
person's own unsubscribe cannot be undone by a service within those days, only by them."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.db.models import Contact
from hub.domain import Scope
from hub.preferences.tokens import LinkSigner, Purpose
from hub.runtime import Runtime
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import (
    PUBLIC_URL,
    TWILIO_TOKEN,
    daytime_zone,
    ok,
    person,
    settled,
    timeline,
    topic,
    twilio_post,
)

NUMBER = "+14155550177"
Api = tuple[TestClient, dict[str, str]]


@pytest.fixture
def days() -> int:
    return 30


@pytest.fixture
def api(database_url: str, days: int) -> Iterator[Api]:
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        public_url=PUBLIC_URL,
        twilio_auth_token=TWILIO_TOKEN,
        cool_down_days=days,
    )
    runtime = Runtime.build(settings)
    workers = Workers(runtime)
    workers.start(sweep=False)
    try:
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            auth = make_key(runtime, "support", Scope.ADMIN)
            topic(client, auth, "alerts", allowed_channels=["sms"], default_channels=["sms"])
            person(
                client,
                auth,
                "olga",
                phone=NUMBER,
                timezone=daytime_zone(),
                subscribe={"alerts": ["sms"]},
            )
            yield client, auth
    finally:
        workers.stop()
        runtime.close()


def text(client: TestClient, body: str) -> None:
    params = {
        "From": NUMBER,
        "To": "+15005550006",
        "Body": body,
        "MessageSid": "SM" + secrets.token_hex(16),
    }
    assert twilio_post(client, "/inbound/twilio/sms", params).status_code == 200


def rows(client: TestClient, auth: dict[str, str]) -> list[Any]:
    found = ok(
        client.get("/v1/suppressions", params={"channel": "sms", "address": NUMBER}, headers=auth)
    )
    items: list[Any] = found["items"]
    return items


def notify(client: TestClient, auth: dict[str, str]) -> Any:
    body = {"topic": "alerts", "content": {"": {"sms_body": "Hi"}}, "recipients": ["olga"]}
    accepted = ok(client.post("/v1/notifications", json=body, headers=auth), 202)
    (delivery,) = settled(client, auth, accepted["id"])["deliveries"]["items"]
    return delivery


def test_a_stop_lifted_by_staff_leaves_a_cool_down(api: Api) -> None:
    client, auth = api
    text(client, "STOP")
    (stop,) = rows(client, auth)
    assert client.delete(f"/v1/suppressions/{stop['id']}", headers=auth).status_code == 204
    (cooling,) = rows(client, auth)
    assert cooling["reason"] == "cool_down"
    stopped_at = dt.datetime.fromisoformat(stop["created_at"])
    assert dt.datetime.fromisoformat(cooling["expires_at"]) == stopped_at + dt.timedelta(days=30)
    delivery = notify(client, auth)
    assert (delivery["state"], delivery["reason"]) == ("suppressed", "suppressed:cool_down")
    kinds = [(e["type"], e["reason"]) for e in timeline(client, auth, "olga")]
    assert ("suppression.removed", "sms_stop") in kinds
    assert ("suppression.added", "cool_down") in kinds

    text(client, "START")  # the person themselves: the cool-down is not theirs to wait out
    assert rows(client, auth) == []
    assert notify(client, auth)["state"] == "sent"


def test_the_persons_own_start_lifts_the_stop_at_once(api: Api) -> None:
    client, auth = api
    text(client, "STOP")
    text(client, "START")
    assert rows(client, auth) == []
    assert notify(client, auth)["state"] == "sent"


def test_a_suppression_staff_added_is_lifted_without_one(api: Api) -> None:
    client, auth = api
    added = ok(
        client.post("/v1/suppressions", json={"channel": "sms", "address": NUMBER}, headers=auth),
        201,
    )
    assert client.delete(f"/v1/suppressions/{added['id']}", headers=auth).status_code == 204
    assert rows(client, auth) == []


@pytest.mark.parametrize("days", [0])
def test_no_cool_down_when_it_is_set_to_zero(api: Api) -> None:
    client, auth = api
    text(client, "STOP")
    (stop,) = rows(client, auth)
    assert client.delete(f"/v1/suppressions/{stop['id']}", headers=auth).status_code == 204
    assert rows(client, auth) == []


def test_a_service_cannot_undo_the_persons_own_unsubscribe_but_the_person_can(
    api: Api,
) -> None:
    client, auth = api
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.sessions() as session:
        olga = session.query(Contact).filter_by(external_id="olga").one()
    signer = LinkSigner(runtime.settings.link_secrets(), max_age=dt.timedelta(days=1))
    token = signer.sign(Purpose.UNSUBSCRIBE, olga.id, "alerts", link_key=olga.link_key)
    one_click = f"/unsubscribe/{token}"
    answer = client.post(one_click, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    assert notify(client, auth)["reason"] == "unsubscribed"

    again = {"status": "subscribed", "channels": ["sms"]}
    refused = client.put("/v1/contacts/olga/subscriptions/alerts", json=again, headers=auth)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["details"][0]["field"] == "status"
    assert "HUB_COOL_DOWN_DAYS" in error["message"]
    assert ok(client.get("/v1/contacts/olga/subscriptions/alerts", headers=auth))["status"] == (
        "unsubscribed"
    )

    token = signer.sign(Purpose.PREFERENCES, olga.id, link_key=olga.link_key)
    preferences = f"/preferences/{token}"
    form = client.get(preferences)
    token = form.text.split('name="csrf" value="')[1].split('"')[0]
    saved = client.post(
        preferences,
        data={"csrf": token, "topic:alerts": "on", "channels:alerts": "sms"},
        headers={"origin": str(client.base_url)},
    )
    assert saved.status_code == 200, saved.text
    assert notify(client, auth)["state"] == "sent"


@pytest.mark.parametrize("days", [0])
def test_without_a_cool_down_a_service_may_subscribe_the_person_again(api: Api) -> None:
    client, auth = api
    ok(client.delete("/v1/contacts/olga/subscriptions/alerts", headers=auth))
    again = {"status": "subscribed", "channels": ["sms"]}
    ok(client.put("/v1/contacts/olga/subscriptions/alerts", json=again, headers=auth))
    assert notify(client, auth)["state"] == "sent"
