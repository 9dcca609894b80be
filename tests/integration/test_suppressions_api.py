"""The suppression list over HTTP: add, find (erased addresses too), lift, and the timeline."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.dispatching import ok, person, timeline


def test_add_find_and_lift_with_events_on_the_owners_timeline(
    client: TestClient, auth: dict[str, str]
) -> None:
    person(client, auth, "olga", email="Olga@Example.com", phone="+7 912 345-67-89")
    added = client.post(
        "/v1/suppressions",
        json={
            "channel": "sms",
            "address": "+7 (912) 345-67-89",
            "reason": "sms_stop",
            "note": "replied STOP",
        },
        headers=auth,
    )
    assert added.status_code == 201, added.text
    row = added.json()
    assert row["address"] == "+79123456789"
    assert row["actor"] == "test-service"
    again = client.post(
        "/v1/suppressions", json={"channel": "sms", "address": "+79123456789"}, headers=auth
    )
    assert again.status_code == 200
    assert again.json()["id"] == row["id"]
    assert again.json()["reason"] == "sms_stop"  # the first reason stays

    found = ok(
        client.get(
            "/v1/suppressions",
            params={"channel": "sms", "address": "+7 912 345 67 89"},
            headers=auth,
        )
    )
    assert [r["id"] for r in found["items"]] == [row["id"]]
    events = [e for e in timeline(client, auth, "olga") if e["type"].startswith("suppression.")]
    assert events[0]["type"] == "suppression.added"
    assert events[0]["reason"] == "sms_stop"
    assert events[0]["channel"] == "sms"

    lifted = client.delete(f"/v1/suppressions/{row['id']}", headers=auth)
    assert lifted.status_code == 204
    # A STOP is the person's own refusal: lifted by a service, it leaves a cool-down
    # (test_cool_down.py), which only time or the person ends.
    (cooling,) = ok(client.get("/v1/suppressions", headers=auth))["items"]
    assert cooling["reason"] == "cool_down"
    kept = client.delete(f"/v1/suppressions/{cooling['id']}", headers=auth)
    assert kept.status_code == 409
    assert "START" in kept.json()["error"]["message"]
    removed, added = timeline(client, auth, "olga")[1], timeline(client, auth, "olga")[0]
    assert removed["type"] == "suppression.removed"
    assert removed["actor"] == "test-service"
    assert (added["type"], added["reason"]) == ("suppression.added", "cool_down")

    manual = ok(
        client.post(
            "/v1/suppressions",
            json={"channel": "email", "address": "olga@example.com"},
            headers=auth,
        ),
        201,
    )
    assert client.delete(f"/v1/suppressions/{manual['id']}", headers=auth).status_code == 204
    assert [r["reason"] for r in ok(client.get("/v1/suppressions", headers=auth))["items"]] == [
        "cool_down"
    ]


def test_an_erased_address_is_found_by_hash_and_cannot_be_lifted(
    client: TestClient, auth: dict[str, str]
) -> None:
    person(client, auth, "gone", email="gone@example.com")
    assert client.delete("/v1/contacts/gone", headers=auth).status_code in (200, 204)
    found = ok(
        client.get(
            "/v1/suppressions",
            params={"channel": "email", "address": "GONE@example.com"},
            headers=auth,
        )
    )
    (row,) = found["items"]
    assert row["address"] is None
    assert row["reason"] == "erasure"
    refused = client.delete(f"/v1/suppressions/{row['id']}", headers=auth)
    assert refused.status_code == 409
    assert "erasure" in refused.json()["error"]["message"]


def test_bad_suppressions_are_422_naming_the_field(
    client: TestClient, auth: dict[str, str]
) -> None:
    cases = [
        ({"channel": "email", "address": "not an address"}, "address"),
        ({"channel": "fax", "address": "x"}, "channel"),
        ({"channel": "sms", "address": "+1", "reason": "erasure"}, "reason"),
        ({"channel": "webhook", "address": "ftp://example.com"}, "address"),
    ]
    for body, field in cases:
        answer = client.post("/v1/suppressions", json=body, headers=auth)
        assert answer.status_code == 422, (body, answer.text)
        assert field in [d["field"] for d in answer.json()["error"]["details"]], answer.text
    lookup = client.get("/v1/suppressions", params={"address": "a@example.com"}, headers=auth)
    assert lookup.status_code == 422
    assert lookup.json()["error"]["details"][0]["field"] == "channel"
    assert client.delete("/v1/suppressions/999", headers=auth).status_code == 404
