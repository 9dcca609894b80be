"""The contact import sets a client's owner and teams (issue 21, item 1), on SQLite and
PostgreSQL: the same checks and the same events on both timelines as the API, bad rows refused
naming the field while the others land, and a query per batch, not per row."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from hub.db.models import Contact, ContactEvent, EventMessage
from hub.domain import ActorKind, EventType, Scope
from hub.runtime import Runtime
from hub.services.actor import Actor
from hub.services.imports import ImportFormat, import_contacts
from tests.conftest import make_key

URL = "/v1/contacts/import"
NDJSON = "application/x-ndjson"
ACTOR = Actor(kind=ActorKind.CLI, name="test", source="test.import")


def imported(
    client: TestClient, auth: dict[str, str], body: str, content_type: str = "text/csv"
) -> dict[str, Any]:
    response = client.post(
        URL, content=body.encode(), headers={**auth, "content-type": content_type}
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def ndjson(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def contact(client: TestClient, auth: dict[str, str], external_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/contacts/{external_id}", headers=auth)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def timeline(client: TestClient, auth: dict[str, str], external_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/contacts/{external_id}/timeline?limit=500", headers=auth)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def assigned(client: TestClient, auth: dict[str, str], owner: str) -> list[dict[str, Any]]:
    """The client.assigned changes on an owner's timeline, oldest first."""
    events = timeline(client, auth, owner)
    return [e["changes"] for e in reversed(events) if e["type"] == "client.assigned"]


def errors(report: dict[str, Any]) -> list[tuple[int, str]]:
    return [(e["line"], e["field"]) for e in report["errors"]]


def staff(client: TestClient, auth: dict[str, str]) -> None:
    """Teams north and south; employees e-1 (north) and e-2."""
    for key in ("north", "south"):
        response = client.put(f"/v1/teams/{key}", json={"name": key.title()}, headers=auth)
        assert response.status_code == 201, response.text
    for external_id, body in (("e-1", {"teams": ["north"]}), ("e-2", {})):
        response = client.put(
            f"/v1/contacts/{external_id}", json={"kind": "employee", **body}, headers=auth
        )
        assert response.status_code == 201, response.text


def test_csv_sets_owner_and_teams_as_the_api_does(client: TestClient, auth: dict[str, str]) -> None:
    staff(client, auth)
    api = client.put(
        "/v1/contacts/api-1",
        json={"name": "Ann", "owner": "e-1", "teams": ["south", "north"]},
        headers=auth,
    )
    assert api.status_code == 201, api.text
    report = imported(
        client,
        auth,
        "external_id,name,owner,teams\n"
        "c-1,Ann,e-1,south|north\n"
        "c-2,Bo,e-2, south ; \n"  # spaces around keys, a trailing separator
        "c-3,Cy,,\n",  # empty cells: no owner, no teams
    )
    assert (report["created"], report["failed"], report["errors"]) == (3, 0, [])
    ann = contact(client, auth, "c-1")
    assert (ann["owner"], ann["teams"]) == ("e-1", ["north", "south"])
    bo = contact(client, auth, "c-2")
    assert (bo["owner"], bo["teams"]) == ("e-2", ["south"])
    cy = contact(client, auth, "c-3")
    assert (cy["owner"], cy["teams"]) == (None, [])

    [by_api] = timeline(client, auth, "api-1")
    [by_import] = timeline(client, auth, "c-1")
    assert by_import["type"] == by_api["type"] == "contact.created"
    assert by_import["changes"] == by_api["changes"]
    assert by_import["changes"]["owner"] == {"before": None, "after": "e-1"}
    told = assigned(client, auth, "e-1")
    assert told == [
        {**told[0], "client": "api-1"},
        {**told[0], "client": "c-1"},
    ], "the owner's side says the same for both"
    assert told[0]["owner"] == {"before": False, "after": True}
    assert [e["client"] for e in assigned(client, auth, "e-2")] == ["c-2"]
    events = timeline(client, auth, "e-1")
    assert events[0]["source"] == "api.import"  # the import's actor, on the owner's side too

    listed = client.get("/v1/contacts?owner=e-1", headers=auth).json()["items"]
    assert [c["external_id"] for c in listed] == ["api-1", "c-1"]
    members = client.get("/v1/contacts?team=south", headers=auth).json()["items"]
    assert [c["external_id"] for c in members] == ["api-1", "c-1", "c-2"]


def test_ndjson_moves_and_clears_as_patch_does(client: TestClient, auth: dict[str, str]) -> None:
    """Each step done to api-N by PATCH and to imp-N by an NDJSON import: the same timelines."""
    staff(client, auth)
    steps: list[dict[str, Any]] = [
        {"owner": "e-1", "teams": ["north"]},
        {"owner": "e-2", "teams": ["north", "south"], "name": "Renamed"},
        {"owner": None},
        {"teams": []},
        {"owner": "e-1", "teams": None},
    ]
    for n in (1, 2):
        for prefix in ("api", "imp"):
            response = client.put(f"/v1/contacts/{prefix}-{n}", json={}, headers=auth)
            assert response.status_code == 201, response.text
    for step in steps:
        for n in (1, 2):
            response = client.patch(f"/v1/contacts/api-{n}", json=step, headers=auth)
            assert response.status_code == 200, response.text
        report = imported(
            client,
            auth,
            ndjson({"external_id": "imp-1", **step}, {"external_id": "imp-2", **step}),
            NDJSON,
        )
        assert (report["updated"], report["failed"]) == (2, 0), report
    for n in (1, 2):
        by_api, by_import = contact(client, auth, f"api-{n}"), contact(client, auth, f"imp-{n}")
        assert (by_import["owner"], by_import["teams"]) == (by_api["owner"], by_api["teams"])
        api_events = [(e["type"], e["changes"]) for e in timeline(client, auth, f"api-{n}")]
        import_events = [(e["type"], e["changes"]) for e in timeline(client, auth, f"imp-{n}")]
        assert import_events == api_events
    assert contact(client, auth, "imp-1")["owner"] == "e-1"
    for owner in ("e-1", "e-2"):
        told = assigned(client, auth, owner)
        api_told = [c for c in told if c["client"] == "api-1"]
        import_told = [{**c, "client": "api-1"} for c in told if c["client"] == "imp-1"]
        assert import_told == api_told
    # The former owner is told who took over.
    assert {"client": "imp-1", "owner": {"before": True, "after": False}, "now": "e-2"} in (
        assigned(client, auth, "e-1")
    )


def test_reimporting_the_same_owner_writes_nothing(
    client: TestClient, auth: dict[str, str]
) -> None:
    staff(client, auth)
    body = "external_id,owner,teams\nc-1,e-1,north|south\nc-2,e-2,\n"
    assert imported(client, auth, body)["created"] == 2
    before = {who: timeline(client, auth, who) for who in ("c-1", "c-2", "e-1", "e-2")}
    updated_at = contact(client, auth, "c-1")["updated_at"]
    again = imported(client, auth, body)
    assert (again["unchanged"], again["updated"], again["failed"]) == (2, 0, 0)
    same = imported(
        client,
        auth,
        ndjson({"external_id": "c-1", "owner": "e-1", "teams": ["south", "north"]}),
        NDJSON,
    )
    assert same["unchanged"] == 1
    assert {who: timeline(client, auth, who) for who in before} == before
    assert contact(client, auth, "c-1")["updated_at"] == updated_at


def test_bad_owners_and_teams_are_refused_naming_the_field(
    client: TestClient, auth: dict[str, str]
) -> None:
    staff(client, auth)
    assert (
        client.put("/v1/contacts/e-gone", json={"kind": "employee"}, headers=auth).status_code
        == 201
    )
    assert client.delete("/v1/contacts/e-gone", headers=auth).status_code == 200
    assert client.put("/v1/contacts/client-9", json={}, headers=auth).status_code == 201
    body = (
        "external_id,kind,owner,teams\n"  # 1
        "ok-1,,e-1,north\n"  # 2
        "bad-1,,nobody,\n"  # 3: unknown owner
        "bad-2,,client-9,\n"  # 4: the owner is a client
        "bad-3,,e-gone,\n"  # 5: the owner was erased
        "bad-4,,,west\n"  # 6: unknown team
        "bad-5,,,North\n"  # 7: not a team key at all
        "bad-6,,bad-6,\n"  # 8: their own owner
        "bad-7,employee,e-1,\n"  # 9: employees have no owner
        "ok-2,,e-2,south|north\n"  # 10
        "e-1,client,,\n"  # 11: e-1 owns ok-1 (line 2), so cannot become a client
    )
    report = imported(client, auth, body)
    assert (report["rows"], report["created"], report["failed"]) == (10, 2, 8)
    assert errors(report) == [
        (3, "owner"),
        (4, "owner"),
        (5, "owner"),
        (6, "teams"),
        (7, "teams"),
        (8, "owner"),
        (9, "owner"),
        (11, "kind"),
    ]
    reasons = {e["line"]: e["reason"] for e in report["errors"]}
    assert "'nobody'" in reasons[3]
    assert "employee" in reasons[4]
    assert "'e-gone'" in reasons[5]
    assert "'west'" in reasons[6]
    assert "own owner" in reasons[8]
    assert "owns a client" in reasons[11]
    for refused in ("bad-1", "bad-2", "bad-3", "bad-4", "bad-5", "bad-6", "bad-7"):
        assert client.get(f"/v1/contacts/{refused}", headers=auth).status_code == 404
    assert contact(client, auth, "ok-2")["teams"] == ["north", "south"]
    assert contact(client, auth, "e-1")["kind"] == "employee"
    assert [c["client"] for c in assigned(client, auth, "e-1")] == ["ok-1"]

    # A refused row leaves a stored contact as it was, fields too.
    later = imported(
        client,
        auth,
        ndjson(
            {"external_id": "ok-1", "name": "Changed", "owner": "nobody"},
            {"external_id": "ok-2", "kind": "employee"},  # owned: an employee has no owner
            {"external_id": "e-2", "kind": "client"},  # owns ok-2, as stored
        ),
        NDJSON,
    )
    assert (later["updated"], later["failed"]) == (0, 3)
    assert errors(later) == [(1, "owner"), (2, "kind"), (3, "kind")]
    assert "owns a client" in later["errors"][2]["reason"]
    assert contact(client, auth, "ok-1")["name"] is None
    assert contact(client, auth, "ok-2")["kind"] == "client"
    assert contact(client, auth, "e-2")["kind"] == "employee"
    # And a row making an employee's last client go first frees them to become a client.
    freed = imported(
        client,
        auth,
        ndjson({"external_id": "ok-1", "owner": "e-2"}, {"external_id": "e-1", "kind": "client"}),
        NDJSON,
    )
    assert (freed["updated"], freed["failed"]) == (2, 0), freed
    assert contact(client, auth, "e-1")["kind"] == "client"


def test_owners_made_by_the_same_file(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """Rows are taken in order: an owner may come from an earlier row, in this batch or an
    earlier one, never from a later row."""
    body = (
        "external_id,kind,owner\n"
        "c-0,,e-new\n"  # 2: e-new does not exist yet
        "e-new,employee,\n"  # 3
        "c-1,,e-new\n"  # 4: same batch
        "e-old,employee,\n"  # 5
        "c-2,,e-old\n"  # 6: next batch, owner from the one before
        "c-3,,e-new\n"  # 7
    )
    report = import_contacts(
        runtime.sessions,
        [body.encode()],
        fmt=ImportFormat.CSV,
        actor=ACTOR,
        allow_private_webhooks=False,
        batch_size=4,
        workers=1,  # rows checked in a worker process: what it hands back carries them too
    )
    assert (report.created, report.failed) == (5, 1)
    assert [(e.line, e.field) for e in report.errors] == [(2, "owner")]
    for client_id, owner in (("c-1", "e-new"), ("c-2", "e-old"), ("c-3", "e-new")):
        assert contact(client, auth, client_id)["owner"] == owner
    assert [c["client"] for c in assigned(client, auth, "e-new")] == ["c-1", "c-3"]
    [created] = timeline(client, auth, "c-1")
    assert created["changes"]["owner"] == {"before": None, "after": "e-new"}
    assert created["actor"] == "test"


def test_event_endpoints_hear_of_owners_set_by_an_import(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    admin = make_key(runtime, "admin", Scope.ADMIN)
    created = client.post(
        "/v1/event-endpoints",
        json={"url": "https://hooks.example.com/hub", "event_types": ["client.assigned"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    staff(client, auth)
    imported(client, auth, "external_id,owner\nc-1,e-1\nc-2,\n")
    with runtime.sessions() as session:
        sent = session.scalars(select(EventMessage.payload)).all()
    assert [(m["type"], m["data"]["contact"], m["data"]["details"]["client"]) for m in sent] == [
        ("client.assigned", "e-1", "c-1")
    ]


@contextmanager
def statements(runtime: Runtime) -> Iterator[list[str]]:
    """The statements run meanwhile on the tables an import reads and writes (an executemany
    counts once). Others come and go whatever the rows: a new pooled connection's set-up, the
    event endpoints' directory read again every few seconds."""
    seen: list[str] = []
    tables = re.compile(r"\b(contacts|contact_events|teams|team_members)\b")

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if tables.search(statement):
            seen.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(runtime.engine, "before_cursor_execute", count)


def test_owners_and_teams_cost_queries_per_batch_not_per_row(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    staff(client, auth)

    def run(rows: range, owners: tuple[str, str], teams: tuple[str, str]) -> int:
        body = "external_id,owner,teams\n" + "".join(
            f"c-{i},{owners[i % 2]},{teams[i % 3 == 0]}\n" for i in rows
        )
        with statements(runtime) as seen:
            report = import_contacts(
                runtime.sessions,
                [body.encode()],
                fmt=ImportFormat.CSV,
                actor=ACTOR,
                allow_private_webhooks=False,
                batch_size=500,
                workers=0,
            )
        assert report.failed == 0, report.errors
        return len(seen)

    one_batch = run(range(500), ("e-1", "e-2"), ("north|south", "south"))
    four_batches = run(range(500, 2500), ("e-1", "e-2"), ("north|south", "south"))
    assert four_batches == 4 * one_batch
    # 2,000 stored clients given other owners and teams: still a fixed count per batch.
    moved_one = run(range(500), ("e-2", "e-1"), ("north", "north|south"))
    moved_four = run(range(500, 2500), ("e-2", "e-1"), ("north", "north|south"))
    assert moved_four == 4 * moved_one
    assert moved_one < 20, "a handful of statements per batch"

    # And every row's change is on both timelines.
    with runtime.sessions() as session:
        told = session.execute(
            select(Contact.external_id, func.count())
            .join(ContactEvent, ContactEvent.contact_id == Contact.id)
            .where(ContactEvent.type == EventType.CLIENT_ASSIGNED)
            .group_by(Contact.external_id)
        )
        assert dict(told.all()) == {"e-1": 1250 * 3, "e-2": 1250 * 3}  # gained, lost, gained
    assert contact(client, auth, "c-2498")["owner"] == "e-2"
    assert contact(client, auth, "c-2498")["teams"] == ["north"]
    [moved, _] = timeline(client, auth, "c-2498")
    assert moved["changes"] == {
        "owner": {"before": "e-1", "after": "e-2"},
        "teams": {"before": ["north", "south"], "after": ["north"]},
    }
