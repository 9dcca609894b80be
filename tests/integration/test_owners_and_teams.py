"""Who looks after whom (issue 21, item 1), over HTTP on SQLite and PostgreSQL: teams, a
client's owner and teams as contact fields, both timelines in words, `?owner=` and `?team=`
listings, and what an erasure does to them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.db.models import AuditEntry, ContactEvent, TeamMember
from hub.domain import Scope
from hub.runtime import Runtime
from hub.services.timeline_words import Event, Known, plain, sentence
from tests.conftest import make_key


def put(client: TestClient, auth: dict[str, str], external_id: str, **body: Any) -> Any:
    return client.put(f"/v1/contacts/{external_id}", json=body, headers=auth)


def patch(client: TestClient, auth: dict[str, str], external_id: str, **body: Any) -> Any:
    return client.patch(f"/v1/contacts/{external_id}", json=body, headers=auth)


def timeline(client: TestClient, auth: dict[str, str], external_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/contacts/{external_id}/timeline", headers=auth)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def said(item: dict[str, Any]) -> str:
    """The event in the console's words."""
    event = Event(
        item["type"],
        reason=item.get("reason"),
        changes=item.get("changes"),
        actor_kind=item["actor_kind"],
        actor=item["actor"],
        source=item["source"],
    )
    words = sentence(event, Known(now=dt.datetime.now(dt.UTC)))
    assert words is not None
    return plain(words)


def field_of(response: Any) -> str:
    assert response.status_code == 422, response.text
    fields: list[str] = [d["field"] for d in response.json()["error"]["details"]]
    return fields[0]


def people(client: TestClient, auth: dict[str, str]) -> None:
    for key, name in (("north", "North"), ("south", "South")):
        assert client.put(f"/v1/teams/{key}", json={"name": name}, headers=auth).status_code == 201
    assert put(client, auth, "e-1", kind="employee", teams=["north"]).status_code == 201
    assert put(client, auth, "e-2", kind="employee").status_code == 201


def test_teams_round_trip_with_counts_and_audit(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    people(client, auth)
    assert put(client, auth, "c-1", teams=["north", "south"]).status_code == 201
    renamed = client.put("/v1/teams/north", json={"name": "North-east"}, headers=auth)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "North-east"
    assert renamed.json()["members"] == 2
    listed = client.get("/v1/teams", params={"limit": 1}, headers=auth).json()
    assert [t["key"] for t in listed["items"]] == ["north"]
    rest = client.get("/v1/teams", params={"cursor": listed["next_cursor"]}, headers=auth).json()
    assert [(t["key"], t["members"]) for t in rest["items"]] == [("south", 1)]

    # Any key reads; only the `contacts` scope writes.
    reader = make_key(runtime, "reader", Scope.NOTIFY)
    assert client.get("/v1/teams/south", headers=reader).status_code == 200
    assert client.put("/v1/teams/x", json={"name": "X"}, headers=reader).status_code == 403

    assert client.delete("/v1/teams/north", headers=auth).status_code == 204
    assert client.get("/v1/teams/north", headers=auth).status_code == 404
    assert client.get("/v1/contacts/c-1", headers=auth).json()["teams"] == ["south"]
    left = timeline(client, auth, "c-1")[0]
    assert left["changes"] == {"teams": {"before": ["north", "south"], "after": ["south"]}}
    assert said(left) == "Removed from a team: the team was deleted through the API"
    with runtime.reads() as session:
        audited = session.execute(
            select(AuditEntry.action, AuditEntry.resource_key)
            .where(AuditEntry.resource == "team")
            .order_by(AuditEntry.id)
        ).all()
        members = session.scalars(select(TeamMember.contact_id)).all()
    assert [tuple(a) for a in audited] == [
        ("created", "north"),
        ("created", "south"),
        ("updated", "north"),
        ("deleted", "north"),
    ]
    assert len(members) == 1  # c-1 in south; e-1 left north with it


def test_bad_team_input_names_the_field(client: TestClient, auth: dict[str, str]) -> None:
    assert field_of(client.put("/v1/teams/North!", json={"name": "x"}, headers=auth)) == "key"
    assert field_of(client.put("/v1/teams/n", json={"name": ""}, headers=auth)) == "name"
    assert client.delete("/v1/teams/none", headers=auth).status_code == 404


def test_owner_and_teams_on_both_timelines(client: TestClient, auth: dict[str, str]) -> None:
    people(client, auth)
    created = put(client, auth, "c-1", name="Ann", owner="e-1", teams=["south"])
    assert created.status_code == 201, created.text
    assert created.json()["owner"] == "e-1"
    assert created.json()["teams"] == ["south"]
    assert timeline(client, auth, "c-1")[0]["changes"]["owner"] == {"before": None, "after": "e-1"}
    gained = timeline(client, auth, "e-1")[0]
    assert gained["type"] == "client.assigned"
    assert said(gained) == "Became the owner of client ‘c-1’ by API key ‘test-service’"  # noqa: RUF001

    moved = patch(client, auth, "c-1", owner="e-2")
    assert moved.status_code == 200, moved.text
    assert moved.json()["owner"] == "e-2"
    change = timeline(client, auth, "c-1")[0]
    assert change["changes"] == {"owner": {"before": "e-1", "after": "e-2"}}
    assert said(change) == "Details changed through the API: owner"
    assert said(timeline(client, auth, "e-1")[0]) == (
        "No longer the owner of client ‘c-1’ (now ‘e-2’) by API key ‘test-service’"  # noqa: RUF001
    )
    assert said(timeline(client, auth, "e-2")[0]).startswith("Became the owner of client ‘c-1’")  # noqa: RUF001

    # PUT without owner or teams leaves them; null and [] clear them.
    replaced = put(client, auth, "c-1", name="Ann L.")
    assert (replaced.json()["owner"], replaced.json()["teams"]) == ("e-2", ["south"])
    cleared = patch(client, auth, "c-1", owner=None, teams=[])
    assert (cleared.json()["owner"], cleared.json()["teams"]) == (None, [])
    assert said(timeline(client, auth, "e-2")[0]).endswith("(now no one) by API key ‘test-service’")  # noqa: RUF001
    unchanged = len(timeline(client, auth, "c-1"))
    patch(client, auth, "c-1", owner=None, teams=[])  # no change, no event
    assert len(timeline(client, auth, "c-1")) == unchanged


def test_bad_owner_or_teams_is_a_422_naming_the_field_and_changes_nothing(
    client: TestClient, auth: dict[str, str]
) -> None:
    people(client, auth)
    put(client, auth, "c-1")
    put(client, auth, "c-2", owner="e-1")
    assert field_of(patch(client, auth, "c-1", owner="ghost")) == "owner"
    assert field_of(patch(client, auth, "c-1", owner="c-2")) == "owner"  # a client
    assert field_of(patch(client, auth, "c-1", owner="c-1")) == "owner"  # itself
    assert field_of(patch(client, auth, "e-2", owner="e-1")) == "owner"  # employees: teams
    assert field_of(patch(client, auth, "c-1", teams=["south", "nope"])) == "teams[1]"
    assert field_of(patch(client, auth, "c-1", teams=["south", "south"])) == "teams"
    assert field_of(patch(client, auth, "c-1", teams=["Bad Key"])) == "teams[0]"
    # An owned client cannot become an employee, nor an owner a client, while it lasts.
    assert field_of(patch(client, auth, "c-2", kind="employee")) == "kind"
    assert field_of(patch(client, auth, "e-1", kind="client")) == "kind"
    assert field_of(put(client, auth, "c-3", name="New", owner="ghost")) == "owner"
    assert client.get("/v1/contacts/c-3", headers=auth).status_code == 404
    shown = client.get("/v1/contacts/c-1", headers=auth).json()
    assert (shown["owner"], shown["teams"]) == (None, [])


def test_listing_an_owners_clients_and_a_teams_members(
    client: TestClient, auth: dict[str, str]
) -> None:
    people(client, auth)
    for n in range(5):
        put(client, auth, f"c-{n}", owner="e-1" if n % 2 == 0 else "e-2", teams=["south"])
    first = client.get("/v1/contacts", params={"owner": "e-1", "limit": 2}, headers=auth).json()
    assert [c["external_id"] for c in first["items"]] == ["c-0", "c-2"]
    assert all(c["owner"] == "e-1" for c in first["items"])
    rest = client.get(
        "/v1/contacts", params={"owner": "e-1", "cursor": first["next_cursor"]}, headers=auth
    ).json()
    assert [c["external_id"] for c in rest["items"]] == ["c-4"]
    assert rest["next_cursor"] is None
    north = client.get("/v1/contacts", params={"team": "north"}, headers=auth).json()
    assert [c["external_id"] for c in north["items"]] == ["e-1"]
    both = client.get("/v1/contacts", params={"team": "south", "owner": "e-2"}, headers=auth)
    assert [c["external_id"] for c in both.json()["items"]] == ["c-1", "c-3"]
    unknown = client.get("/v1/contacts", params={"owner": "ghost"}, headers=auth)
    assert field_of(unknown) == "owner"
    assert field_of(client.get("/v1/contacts", params={"team": "nope"}, headers=auth)) == "team"


def test_erasing_an_owner_frees_their_clients_without_naming_them(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    people(client, auth)
    put(client, auth, "c-1", owner="e-1")
    put(client, auth, "c-2", owner="e-1", teams=["north"])
    assert client.delete("/v1/contacts/e-1", headers=auth).status_code == 200
    for client_id in ("c-1", "c-2"):
        assert client.get(f"/v1/contacts/{client_id}", headers=auth).json()["owner"] is None
        told = timeline(client, auth, client_id)[0]
        assert told["changes"] == {"owner": {"before": "(erased)", "after": None}}
        assert "e-1" not in str(told)
        assert said(told) == "Owner removed: the owner's record was erased through the API"
    assert client.get("/v1/teams/north", headers=auth).json()["members"] == 1  # c-2 only
    assert client.get("/v1/contacts", params={"owner": "e-1"}, headers=auth).status_code == 422


def test_erasing_a_client_leaves_no_trace_of_them_with_their_owner(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    people(client, auth)
    put(client, auth, "c-secret", owner="e-1")
    patch(client, auth, "c-secret", owner="e-2")
    assert client.delete("/v1/contacts/c-secret", headers=auth).status_code == 200
    with runtime.reads() as session:
        kept = session.scalars(select(ContactEvent.changes)).all()
    assert "c-secret" not in str(kept)
    told = timeline(client, auth, "e-2")[0]
    assert said(told) == "No longer the owner of a client: the client was erased"
