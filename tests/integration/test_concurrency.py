"""Parallel changes to one person serialise: no 5xx, and each event's "before" is the state it
replaced, so the timeline replays into the stored state (RELIABILITY 15)."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient


def parallel(calls: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda call: call(), calls))


def chain_holds(events: list[dict[str, Any]], field: str) -> None:
    oldest_first = list(reversed(events))
    for previous, event in itertools.pairwise(oldest_first):
        assert event["changes"][field]["before"] == previous["changes"][field]["after"]


def test_parallel_contact_updates(client: TestClient, auth: dict[str, str]) -> None:
    assert (
        client.put("/v1/contacts/c1", json={"email": "a0@example.com"}, headers=auth).status_code
        == 201
    )
    responses = parallel(
        [
            (
                lambda i=i: client.put(
                    "/v1/contacts/c1", json={"email": f"a{i}@example.com"}, headers=auth
                )
            )
            for i in range(1, 17)
        ]
    )
    assert {r.status_code for r in responses} == {200}
    events = client.get(
        "/v1/contacts/c1/timeline", params={"type": "contact.updated"}, headers=auth
    ).json()["items"]
    assert len(events) == 16
    chain_holds(events, "email")
    final = client.get("/v1/contacts/c1", headers=auth).json()["email"]
    assert events[0]["changes"]["email"]["after"] == final


def test_parallel_subscription_and_preference_writes(
    client: TestClient, auth: dict[str, str]
) -> None:
    client.put(
        "/v1/topics/news", json={"name": "News", "allowed_channels": ["email", "sms"]}, headers=auth
    )
    client.put(
        "/v1/contacts/c1", json={"email": "a@example.com", "phone": "+14155552671"}, headers=auth
    )
    choices = [["email"], ["sms", "email"]]
    subscribe = [
        (
            lambda i=i: client.put(
                "/v1/contacts/c1/subscriptions/news",
                json={"channels": choices[i % 2]},
                headers=auth,
            )
        )
        for i in range(16)
    ]
    prefs = [
        (
            lambda i=i: client.patch(
                "/v1/contacts/c1/preferences",
                json={"blocked_channels": ["voice"] if i % 2 else []},
                headers=auth,
            )
        )
        for i in range(16)
    ]
    responses = parallel(subscribe + prefs)
    assert {r.status_code for r in responses} <= {200, 201}, [r.text for r in responses]
    assert sum(r.status_code == 201 for r in responses[:16]) == 1
    events = client.get(
        "/v1/contacts/c1/timeline", params={"type": "subscription.changed"}, headers=auth
    ).json()["items"]
    chain_holds(events, "channels")
    stored = client.get("/v1/contacts/c1/subscriptions/news", headers=auth).json()["channels"]
    assert events[0]["changes"]["channels"]["after"] == stored


def test_one_idempotency_key_sent_at_once_makes_one_notification(
    client: TestClient, runtime: Any
) -> None:
    """Sixteen copies of one request under one key, all at once: one notification, and every
    answer is its answer (the key is stored in the work's own transaction; the others wait
    for that commit and replay it)."""
    from sqlalchemy import func, select

    from hub.db.models import Notification
    from hub.domain import Scope
    from tests.conftest import make_key

    headers = make_key(runtime, "billing", Scope.NOTIFY, Scope.ADMIN)
    topic = {"name": "Receipts", "allowed_channels": ["email"], "required": True}
    assert client.put("/v1/topics/receipts", json=topic, headers=headers).status_code == 201
    body = {
        "topic": "receipts",
        "recipients": [{"external_id": "buyer-1", "email": "buyer@example.com"}],
        "content": {"": {"email_subject": "Receipt", "email_text": "Thanks"}},
    }
    keyed = headers | {"Idempotency-Key": "order-7"}
    answers = parallel([lambda: client.post("/v1/notifications", json=body, headers=keyed)] * 16)
    assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert [a.headers.get("Idempotent-Replayed") for a in answers].count(None) == 1
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 1
    other = body | {"data": {"changed": True}}
    reused = client.post("/v1/notifications", json=other, headers=keyed)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
