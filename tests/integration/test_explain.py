"""Explain: for a contact and a topic at any moment, and for a delivery, the rules that
applied and what each found (quiet hours, the legal window, suppressions, consent)."""

from __future__ import annotations

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
from tests.dispatching import ok, person, settled, topic

# 2026-07-01 in Berlin is CEST, UTC+2: 21:30 UTC is 23:30 local, 10:00 UTC is 12:00 local.
NIGHT, NOON = "2026-07-01T21:30:00Z", "2026-07-01T10:00:00Z"


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, dict[str, str], Runtime]]:
    runtime = Runtime.build(Settings(database_url=database_url, secret_key=TEST_SECRET))
    workers = Workers(runtime)
    workers.start(sweep=False)
    try:
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            auth = make_key(runtime, "support", Scope.ADMIN)
            topic(client, auth, "offers", allowed_channels=["email", "sms"])
            person(
                client,
                auth,
                "eva",
                email="eva@example.com",
                phone="+14155550188",
                timezone="Europe/Berlin",
                subscribe={"offers": ["sms", "email"]},
            )
            ok(
                client.patch(
                    "/v1/contacts/eva/preferences",
                    json={"quiet_hours": {"start": "22:00", "end": "07:00"}},
                    headers=auth,
                )
            )
            yield client, auth, runtime
    finally:
        workers.stop()
        runtime.close()


def explained(client: TestClient, auth: dict[str, str], at: str) -> Any:
    answer = client.get(
        "/v1/contacts/eva/explain", params={"topic": "offers", "at": at}, headers=auth
    )
    return ok(answer)


def verdicts(body: Any, channel: str | None) -> dict[str, str]:
    return {r["rule"]: r["verdict"] for r in body["rules"] if r["channel"] == channel}


def test_at_night_quiet_hours_and_the_legal_window_hold_the_message(
    api: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, _ = api
    night = explained(client, auth, NIGHT)
    assert night["outcome"]["send_now"] == []
    deferred = {d["channel"]: d for d in night["outcome"]["deferred"]}
    assert deferred["email"]["reason"] == "quiet_hours"
    assert deferred["email"]["until"].startswith("2026-07-02T05:00:00")  # 07:00 CEST
    assert deferred["sms"]["until"].startswith("2026-07-02T06:00:00")  # 08:00: legal window
    assert verdicts(night, None) == {"audience": "pass", "consent": "pass"}
    assert verdicts(night, "sms") == {
        "channel": "pass",
        "legal_window": "defer",
        "quiet_hours": "defer",
        "send": "defer",
    }
    quiet = next(
        r for r in night["rules"] if r["rule"] == "quiet_hours" and r["channel"] == "email"
    )
    assert quiet["detail"] == "22:00-07:00 in Europe/Berlin: closed at 23:30"

    noon = explained(client, auth, NOON)
    assert sorted(noon["outcome"]["send_now"]) == ["email", "sms"]
    assert verdicts(noon, "sms")["legal_window"] == "pass"
    assert verdicts(noon, "email") == {"channel": "pass", "quiet_hours": "pass", "send": "pass"}


def test_a_stop_shows_as_the_reason_and_a_delivery_explains_itself(
    api: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, _ = api
    ok(
        client.post(
            "/v1/suppressions",
            json={"channel": "sms", "address": "+14155550188", "reason": "sms_stop"},
            headers=auth,
        )
    )
    stopped = explained(client, auth, NOON)
    (refusal,) = stopped["outcome"]["refused"]
    assert (refusal["channel"], refusal["reason"], refusal["detail"]) == (
        "sms",
        "suppressed",
        "sms_stop",
    )
    step = next(r for r in stopped["rules"] if r["channel"] == "sms")
    assert (step["verdict"], step["detail"]) == ("refuse", "suppressed (sms_stop)")

    content = {"": {"email_subject": "Hi", "email_text": "Hello", "sms_body": "Hello"}}
    accepted = ok(
        client.post(
            "/v1/notifications",
            json={"topic": "offers", "content": content, "recipients": ["eva"]},
            headers=auth,
        ),
        202,
    )
    deliveries = settled(client, auth, accepted["id"])["deliveries"]["items"]
    sms = next(d for d in deliveries if d["channel"] == "sms")
    why = ok(client.get(f"/v1/deliveries/{sms['id']}/explain", headers=auth))
    assert why["delivery"]["state"] == "suppressed"
    assert why["delivery"]["reason"] == "suppressed:sms_stop"
    assert {r["channel"] for r in why["rules"]} <= {None, "sms"}
    assert any(r["verdict"] == "refuse" for r in why["rules"])


def test_explain_names_what_is_wrong(api: tuple[TestClient, dict[str, str], Runtime]) -> None:
    client, auth, _ = api
    assert client.get("/v1/deliveries/999/explain", headers=auth).status_code == 404
    naive = client.get(
        "/v1/contacts/eva/explain",
        params={"topic": "offers", "at": "2026-07-01T10:00:00"},
        headers=auth,
    )
    assert naive.status_code == 422
    assert "at" in naive.text
    unknown = client.get("/v1/contacts/eva/explain", params={"topic": "nope"}, headers=auth)
    assert unknown.status_code == 404
    assert client.get("/v1/contacts/eva/explain", params={"topic": "offers"}).status_code == 401
