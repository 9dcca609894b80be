"""Contacts over HTTP, on SQLite and PostgreSQL: upsert, patch, filters, paging, erasure."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from hub.db.models import ContactEvent, Erasure, Suppression
from hub.domain import Channel, SuppressionReason
from hub.runtime import Runtime

ANN = {
    "name": "Ann Lee",
    "email": "Ann.Lee@Example.COM",
    "phone": "+44 20 7946 0958",
    "timezone": "Europe/London",
    "locale": "en_gb",
    "attributes": {"plan": "gold", "seats": 12},
}


def put(client: TestClient, auth: dict[str, str], external_id: str, body: dict[str, Any]) -> Any:
    return client.put(f"/v1/contacts/{external_id}", json=body, headers=auth)


def test_put_creates_then_replaces_and_normalises(client: TestClient, auth: dict[str, str]) -> None:
    created = put(client, auth, "c-1", ANN)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["email"] == "Ann.Lee@example.com"  # domain lower-cased, local part kept
    assert body["phone"] == "+442079460958"
    assert body["locale"] == "en-GB"
    assert body["kind"] == "client"

    replaced = put(client, auth, "c-1", {"email": "ann@example.org", "timezone": "Asia/Tokyo"})
    assert replaced.status_code == 200
    assert replaced.json()["phone"] is None  # PUT replaces: fields left out return to defaults
    assert replaced.json()["attributes"] == {}
    assert replaced.json()["created_at"] == body["created_at"]


def test_patch_changes_only_given_fields_and_merges_attributes(
    client: TestClient, auth: dict[str, str]
) -> None:
    put(client, auth, "c-1", ANN)
    response = client.patch(
        "/v1/contacts/c-1",
        json={"name": "Ann L.", "attributes": {"seats": None, "tier": 2}},
        headers=auth,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Ann L."
    assert body["phone"] == "+442079460958"
    assert body["attributes"] == {"plan": "gold", "tier": 2}


def test_patch_of_unknown_contact_is_404(client: TestClient, auth: dict[str, str]) -> None:
    response = client.patch("/v1/contacts/ghost", json={"name": "x"}, headers=auth)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_every_change_is_on_the_timeline_with_before_and_after(
    client: TestClient, auth: dict[str, str]
) -> None:
    put(client, auth, "c-1", ANN)
    client.patch("/v1/contacts/c-1", json={"email": "new@example.com"}, headers=auth)
    client.patch("/v1/contacts/c-1", json={"email": "new@example.com"}, headers=auth)  # no-op
    events = client.get("/v1/contacts/c-1/timeline", headers=auth).json()["items"]
    assert [e["type"] for e in events] == ["contact.updated", "contact.created"]
    updated = events[0]
    assert updated["changes"] == {
        "email": {"before": "Ann.Lee@example.com", "after": "new@example.com"}
    }
    assert updated["actor"] == "test-service"
    assert updated["actor_kind"] == "api_key"
    assert updated["source"] == "api"
    assert events[1]["changes"]["attributes.plan"] == {"before": None, "after": "gold"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"phone": "4155552671"}, "phone"),
        ({"phone": "+1 415 555"}, "phone"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"locale": "english please"}, "locale"),
        ({"kind": "robot"}, "kind"),
        ({"webhook_url": "ftp://example.com/x"}, "webhook_url"),
        ({"webhook_url": "http://127.0.0.1/hook"}, "webhook_url"),
        ({"webhook_url": "http://2130706433/hook"}, "webhook_url"),
        ({"webhook_url": "http://[::1]/hook"}, "webhook_url"),
        ({"webhook_url": "http://127.1/hook"}, "webhook_url"),
        ({"webhook_url": "http://0x7f.1/hook"}, "webhook_url"),
        ({"webhook_url": "http://0177.0.0.1/hook"}, "webhook_url"),
        ({"webhook_url": "http://localhost./hook"}, "webhook_url"),
        ({"webhook_url": "http://127.0.0.1./hook"}, "webhook_url"),
        ({"webhook_url": "http://169.254.169.254/latest"}, "webhook_url"),
        ({"name": "a\x00b"}, "name"),
        ({"attributes": {"k": "a\x00b"}}, "attributes"),
        ({"attributes": {"k": "x" * 20_000}}, "attributes"),
        ({"attributes": []}, "attributes"),
        ({"nickname": "Annie"}, "nickname"),
    ],
)
def test_bad_contact_fields_get_422_naming_the_field(
    client: TestClient, auth: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = put(client, auth, "c-bad", body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert any(d["field"] == field for d in error["details"]), error
    assert error["message"].startswith(field)
    assert client.get("/v1/contacts/c-bad", headers=auth).status_code == 404


def test_malformed_json_and_oversized_body(client: TestClient, auth: dict[str, str]) -> None:
    broken = client.put(
        "/v1/contacts/c-1", content=b"{nope", headers={**auth, "content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["error"]["details"][0]["field"] == "body"
    huge = client.put(
        "/v1/contacts/c-1",
        content=b"x" * 2_000_000,
        headers={**auth, "content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "payload_too_large"


def test_list_filters_and_cursor_paging(client: TestClient, auth: dict[str, str]) -> None:
    for n in range(7):
        kind = "employee" if n % 3 == 0 else "client"
        put(client, auth, f"c-{n}", {"kind": kind, "attributes": {"n": n, "team": f"t{n % 2}"}})
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/contacts", params=params, headers=auth).json()
        seen += [c["external_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"c-{n}" for n in range(7)]

    employees = client.get("/v1/contacts", params={"kind": "employee"}, headers=auth).json()
    assert [c["external_id"] for c in employees["items"]] == ["c-0", "c-3", "c-6"]
    team = client.get("/v1/contacts", params=[("attr", "team:t1"), ("attr", "n:5")], headers=auth)
    assert [c["external_id"] for c in team.json()["items"]] == ["c-5"]


@pytest.mark.parametrize(
    "params",
    [{"cursor": "garbage!"}, {"limit": 0}, {"limit": 501}, {"attr": "no-colon"}, {"kind": "robot"}],
)
def test_bad_list_parameters_get_422(
    client: TestClient, auth: dict[str, str], params: dict[str, Any]
) -> None:
    response = client.get("/v1/contacts", params=params, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"]


def test_erasure_removes_data_and_keeps_hashed_suppression(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    put(client, auth, "c-1", ANN)
    erased = client.delete("/v1/contacts/c-1", headers=auth)
    assert erased.status_code == 200, erased.text
    assert erased.json()["suppressions_added"] == 3  # email, sms, voice
    assert client.get("/v1/contacts/c-1", headers=auth).status_code == 404

    with runtime.sessions() as session:
        rows = session.scalars(select(Suppression)).all()
        assert {(r.channel, r.reason) for r in rows} == {
            (Channel.EMAIL, SuppressionReason.ERASURE),
            (Channel.SMS, SuppressionReason.ERASURE),
            (Channel.VOICE, SuppressionReason.ERASURE),
        }
        assert all(r.address is None for r in rows)
        assert {r.address_hash for r in rows if r.channel is Channel.EMAIL} == {
            runtime.hasher(Channel.EMAIL, "ann.lee@example.com")
        }
        assert session.scalars(select(ContactEvent)).all() == []
        erasure = session.scalars(select(Erasure)).one()
        assert erasure.actor == "test-service"
        assert "Ann" not in repr(erasure.__dict__)

    # Re-importing the address gives a new contact, and the hash still matches it.
    again = put(client, auth, "c-1", ANN)
    assert again.status_code == 201
    with runtime.sessions() as session:
        digest = runtime.hasher(Channel.EMAIL, again.json()["email"])
        assert session.scalar(select(Suppression).where(Suppression.address_hash == digest))


def test_timeline_is_append_only_in_the_database(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    put(client, auth, "c-1", ANN)
    with runtime.engine.connect() as connection, pytest.raises(Exception, match="append-only"):
        connection.execute(text("UPDATE contact_events SET actor = 'someone else'"))


def test_external_id_edge_cases(client: TestClient, auth: dict[str, str]) -> None:
    assert put(client, auth, "x" * 255, {}).status_code == 201
    assert put(client, auth, "x" * 256, {}).status_code == 422
    assert put(client, auth, "with space and ünïcode", {}).status_code == 201
    assert client.get("/v1/contacts/with space and ünïcode", headers=auth).status_code == 200


def test_lookup_by_address_normalises_like_storage(
    client: TestClient, auth: dict[str, str]
) -> None:
    put(client, auth, "c-1", ANN)
    for params in ({"email": "Ann.Lee@EXAMPLE.com"}, {"phone": "+44 (20) 7946-0958"}):
        found = client.get("/v1/contacts", params=params, headers=auth).json()["items"]
        assert [c["external_id"] for c in found] == ["c-1"], params
    bad = client.get("/v1/contacts", params={"phone": "12"}, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "phone"


@pytest.mark.parametrize("key", ['a"b', "a'b", "$.x", "a b", "", "x" * 101, "a[0]"])
def test_attribute_filter_keys_are_checked_not_spliced(
    client: TestClient, auth: dict[str, str], key: str
) -> None:
    response = client.get("/v1/contacts", params={"attr": f"{key}:1"}, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith("attr[0]")


@pytest.mark.parametrize("external_id", [" x", "x ", "x%09", "%20"])
def test_external_ids_with_surrounding_space_are_refused(
    client: TestClient, auth: dict[str, str], external_id: str
) -> None:
    response = put(client, auth, external_id, {})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "external_id"
