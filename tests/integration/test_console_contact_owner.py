"""Who looks after whom, from the console (issue 21, item 1), on SQLite and PostgreSQL: a
marketer sets a client's owner and teams, and an employee's teams, in the contact form; each
change is saved through the API's own service, so it is on the client's timeline and the
owners' with the staff member as actor; the profile shows the owner (linked), the teams and an
employee's clients; bad input is refused naming the field and saves nothing; a viewer may not
post; the contact list narrows to an owner's clients and a team's members."""

# The timeline's words use typographic quotation marks.
# ruff: noqa: RUF001

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.domain import StaffRole
from hub.runtime import Runtime
from hub.schemas.teams import TEAM_KEY
from hub.services import staff
from tests.dispatching import ok, timeline

PASSWORD = "correct horse battery staple"
MARKETER = "mia@acme.example"
CONSOLE = ("staff", MARKETER, "console")


@pytest.fixture
def people(client: TestClient, auth: dict[str, str]) -> None:
    """Teams North and South; employees Ann (North) and Ben; clients Cy and Di, owned by no one."""
    for key, name in (("north", "North"), ("south", "South")):
        ok(client.put(f"/v1/teams/{key}", json={"name": name}, headers=auth))
    for external_id, kind, name, teams in (
        ("e-ann", "employee", "Ann Lee", ["north"]),
        ("e-ben", "employee", "Ben Ode", []),
        ("c-cy", "client", "Cy Young", []),
        ("c-di", "client", "Di Ray", []),
    ):
        body = {"kind": kind, "name": name, "timezone": "UTC", "teams": teams}
        ok(client.put(f"/v1/contacts/{external_id}", json=body, headers=auth))


def signed_in(client: TestClient, runtime: Runtime, email: str, role: StaffRole) -> str:
    """Sign `client` in as a new staff user; the form token of their session."""
    with runtime.sessions() as session:
        staff.create(session, email, PASSWORD, role)
        session.commit()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)
    assert token is not None
    answer = client.post(
        "/console/login",
        data={"csrf": token.group(1), "email": email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/contacts").text)
    assert found is not None
    return found.group(1)


def edit(client: TestClient, token: str, external_id: str, **fields: Any) -> Any:
    """Post the edit form as a browser does: every field the form has, the owner's and the
    team checkboxes' included (`teams` a list: one value per ticked box)."""
    data = {"csrf": token, "kind": "client", "timezone": "UTC", "teams_shown": "1"} | fields
    return client.post(f"/console/contacts/{external_id}/edit", data=data, follow_redirects=False)


def add(client: TestClient, token: str, **fields: Any) -> Any:
    data = {"csrf": token, "kind": "client", "timezone": "UTC", "teams_shown": "1"} | fields
    return client.post("/console/contacts/new", data=data, follow_redirects=False)


def summary(page: str) -> list[tuple[str, str]]:
    """The error summary's links: (the field's id, the message)."""
    box = page.partition('class="error-summary"')[2].partition("</div>")[0]
    return [
        (field, html.unescape(text))
        for field, text in re.findall(r'<li><a href="#([^"]+)">([^<]*)</a></li>', box)
    ]


def said(client: TestClient, auth: dict[str, str], external_id: str) -> list[tuple[Any, ...]]:
    """The person's events from the console, newest first: (type, changes, actor, source)."""
    return [
        (e["type"], e["changes"], e["actor_kind"], e["actor"], e["source"])
        for e in timeline(client, auth, external_id)
        if e["source"] == "console"
    ]


def contact(client: TestClient, auth: dict[str, str], external_id: str) -> Any:
    return ok(client.get(f"/v1/contacts/{external_id}", headers=auth))


def words(page: str) -> list[str]:
    """The timeline's sentences on a profile, newest first, tags and the kind code left out."""
    cells = re.findall(r'<td class="what"[^>]*>(.*?)</td>', page, flags=re.S)
    cleaned = (re.sub(r'<code class="kind".*?</code>', "", c, flags=re.S) for c in cells)
    return [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cleaned]


def test_a_marketer_sets_owner_and_teams_and_both_timelines_say_so(
    client: TestClient, auth: dict[str, str], runtime: Runtime, people: None
) -> None:
    token = signed_in(client, runtime, MARKETER, StaffRole.MARKETER)

    form = client.get("/console/contacts/c-cy/edit").text
    assert 'id="owner" name="owner" value=""' in form
    assert '<option value="e-ann" label="Ann Lee">' in form  # the employees are suggested
    assert '<option value="c-cy"' not in form  # clients are not
    assert re.findall(r'name="teams" value="(\w+)"', form) == ["north", "south"]

    saved = edit(client, token, "c-cy", name="Cy Young", owner="e-ann", teams=["north", "south"])
    assert saved.status_code == 303, saved.text
    cy = contact(client, auth, "c-cy")
    assert (cy["owner"], cy["teams"]) == ("e-ann", ["north", "south"])
    changed = {
        "owner": {"before": None, "after": "e-ann"},
        "teams": {"before": [], "after": ["north", "south"]},
    }
    assert said(client, auth, "c-cy") == [("contact.updated", changed, *CONSOLE)]
    assert said(client, auth, "e-ann") == [
        (
            "client.assigned",
            {"client": "c-cy", "owner": {"before": False, "after": True}},
            *CONSOLE,
        )
    ]

    # The form shows what is saved; a new owner: each employee's timeline tells their side.
    form = client.get("/console/contacts/c-cy/edit").text
    assert 'id="owner" name="owner" value="e-ann"' in form
    assert len(re.findall(r'name="teams" value="\w+" checked', form)) == 2
    moved = edit(client, token, "c-cy", name="Cy Young", owner="e-ben", teams=["south"])
    assert moved.status_code == 303, moved.text
    assert said(client, auth, "e-ann")[0][1] == {
        "client": "c-cy",
        "owner": {"before": True, "after": False},
        "now": "e-ben",
    }
    assert said(client, auth, "e-ben")[0][1]["owner"] == {"before": False, "after": True}

    # The client's profile: the owner linked, the teams linked to their members.
    profile = client.get("/console/contacts/c-cy").text
    assert '<a href="/console/contacts/e-ben">Ben Ode</a> (e-ben)' in profile
    assert '<a href="/console/contacts?team=south">South</a>' in profile
    # The employee's: how many clients they own, linked to the list of them, and the client
    # on their timeline linked to the client's page.
    ben = client.get("/console/contacts/e-ben").text
    assert '<a href="/console/contacts?owner=e-ben">1 client</a>' in ben
    assert 'Became the owner of client ‘<a href="/console/contacts/c-cy">c-cy</a>’' in ben
    ann = client.get("/console/contacts/e-ann").text
    assert "No longer the owner of client ‘c-cy’ (now ‘e-ben’) in the console by " + MARKETER in (
        words(ann)
    )
    assert 'href="/console/contacts/c-cy">c-cy</a>' in ann
    assert client.get("/console/contacts?owner=e-ben").status_code == 200

    # An employee's form has teams and no owner; their teams are saved the same way.
    form = client.get("/console/contacts/e-ben/edit").text
    assert 'name="owner"' not in form
    assert 'name="teams" value="north"' in form
    teamed = edit(client, token, "e-ben", kind="employee", name="Ben Ode", teams=["north"])
    assert teamed.status_code == 303, teamed.text
    assert contact(client, auth, "e-ben")["teams"] == ["north"]
    assert contact(client, auth, "c-cy")["owner"] == "e-ben"  # the employee keeps their client
    assert said(client, auth, "e-ben")[0][:2] == (
        "contact.updated",
        {"teams": {"before": [], "after": ["north"]}},
    )

    # A new client with an owner and a team.
    created = add(client, token, external_id="c-eve", name="Eve", owner="e-ann", teams="south")
    assert created.status_code == 303, created.text
    eve = contact(client, auth, "c-eve")
    assert (eve["owner"], eve["teams"]) == ("e-ann", ["south"])
    assert said(client, auth, "e-ann")[0][1]["client"] == "c-eve"
    assert said(client, auth, "c-eve")[0][0] == "contact.created"

    # Clearing: no owner, no team (nothing ticked); both timelines again.
    cleared = edit(client, token, "c-cy", name="Cy Young", owner="")
    assert cleared.status_code == 303, cleared.text
    cy = contact(client, auth, "c-cy")
    assert (cy["owner"], cy["teams"]) == (None, [])
    assert said(client, auth, "e-ben")[0][1]["now"] is None
    assert "no one" in client.get("/console/contacts/c-cy").text


def test_bad_owners_and_teams_are_refused_naming_the_field_and_save_nothing(
    client: TestClient, auth: dict[str, str], runtime: Runtime, people: None
) -> None:
    token = signed_in(client, runtime, MARKETER, StaffRole.MARKETER)
    ok(client.patch("/v1/contacts/c-di", json={"owner": "e-ann"}, headers=auth))
    before = {x: timeline(client, auth, x) for x in ("c-cy", "c-di", "e-ann", "e-ben")}

    cases: list[tuple[Any, tuple[str, str]]] = [
        (
            edit(client, token, "c-cy", name="Renamed", owner="nobody"),
            ("owner", "Owner: no contact with external_id 'nobody'"),
        ),
        (
            edit(client, token, "c-cy", name="Renamed", owner="c-di"),
            ("owner", "Owner: 'c-di' is a client; an owner must be an employee"),
        ),
        (
            edit(client, token, "c-cy", name="Renamed", owner="c-cy"),
            ("owner", "Owner: a contact cannot be their own owner"),
        ),
        (
            edit(client, token, "c-cy", name="Renamed", owner="x" * 300),
            ("owner", "Owner: String should have at most 255 characters"),
        ),
        (  # a key no checkbox offers (a team deleted meanwhile, or a forged form)
            edit(client, token, "c-cy", name="Renamed", teams=["north", "gone"]),
            ("teams", "Teams: no team with key 'gone'; create it first"),
        ),
        (
            edit(client, token, "c-cy", name="Renamed", teams=["North!"]),
            ("teams", f"Teams: String should match pattern '{TEAM_KEY}'"),
        ),
        (  # an employee has no owner: put them in teams
            edit(client, token, "e-ben", kind="employee", name="Renamed", owner="e-ann"),
            ("owner", "Owner: only a client has an owner; put employees in teams"),
        ),
        (  # Ann owns Di: she cannot become a client until Di has another owner
            edit(client, token, "e-ann", kind="client", name="Renamed", teams=["north"]),
            ("kind", "Kind: this employee owns a client: give them another owner first"),
        ),
        (
            add(client, token, external_id="c-new", kind="employee", owner="e-ann"),
            ("owner", "Owner: only a client has an owner; put employees in teams"),
        ),
        (
            add(client, token, external_id="c-new", owner="e-nobody"),
            ("owner", "Owner: no contact with external_id 'e-nobody'"),
        ),
    ]
    for answer, problem in cases:
        assert answer.status_code == 422, (problem, answer.text[:300])
        assert summary(answer.text) == [problem]
        field = problem[0]
        assert f'id="{field}-error"' in answer.text  # the message beside the field too
    # The refused form keeps what was typed.
    assert 'id="owner" name="owner" value="nobody"' in cases[0][0].text
    assert 'name="teams" value="north" checked' in cases[4][0].text

    after = {x: timeline(client, auth, x) for x in before}
    assert after == before
    assert contact(client, auth, "c-cy")["name"] == "Cy Young"
    assert contact(client, auth, "e-ann")["kind"] == "employee"
    assert client.get("/v1/contacts/c-new", headers=auth).status_code == 404


def test_a_viewer_sees_who_looks_after_whom_but_may_not_change_it(
    client: TestClient, auth: dict[str, str], runtime: Runtime, people: None
) -> None:
    ok(client.patch("/v1/contacts/c-cy", json={"owner": "e-ann"}, headers=auth))
    token = signed_in(client, runtime, "vic@acme.example", StaffRole.VIEWER)
    profile = client.get("/console/contacts/c-cy").text
    assert '<a href="/console/contacts/e-ann">Ann Lee</a> (e-ann)' in profile
    assert client.get("/console/contacts/c-cy/edit").status_code == 403
    refused = [
        edit(client, token, "c-cy", name="Cy Young", owner="e-ben"),
        edit(client, token, "c-di", name="Di Ray", teams=["north"]),
        add(client, token, external_id="c-new", owner="e-ann"),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert (contact(client, auth, "c-cy")["owner"], contact(client, auth, "c-di")["teams"]) == (
        "e-ann",
        [],
    )
    assert said(client, auth, "e-ben") == []
    assert client.get("/v1/contacts/c-new", headers=auth).status_code == 404


def listed(page: str) -> list[str]:
    return re.findall(r'<tr><td><a href="/console/contacts/([^"]+)">', page)


def test_the_list_narrows_to_an_owners_clients_and_a_teams_members(
    client: TestClient, auth: dict[str, str], runtime: Runtime, people: None
) -> None:
    signed_in(client, runtime, "vic@acme.example", StaffRole.VIEWER)
    for external_id in ("c-cy", "c-di"):
        ok(client.patch(f"/v1/contacts/{external_id}", json={"owner": "e-ann"}, headers=auth))
    ok(client.patch("/v1/contacts/c-di", json={"teams": ["south"]}, headers=auth))

    mine = client.get("/console/contacts", params={"owner": "e-ann"})
    assert mine.status_code == 200
    assert listed(mine.text) == ["c-di", "c-cy"]  # newest first
    assert "<h2>Clients of Ann Lee (e-ann)</h2>" in mine.text
    assert listed(client.get("/console/contacts?team=north").text) == ["e-ann"]
    both = client.get("/console/contacts", params={"owner": "e-ann", "team": "south"})
    assert listed(both.text) == ["c-di"]
    assert "Clients of Ann Lee (e-ann) who are members of the team South" in both.text
    assert listed(client.get("/console/contacts?owner=e-ben").text) == []
    searched = client.get("/console/contacts", params={"owner": "e-ann", "q": "Cy"})
    assert listed(searched.text) == ["c-cy"]

    unknown = client.get("/console/contacts", params={"owner": "nobody", "team": "gone"})
    assert unknown.status_code == 422
    assert summary(unknown.text) == [
        ("owner", "Owner: no one has the external id 'nobody'"),
        ("team", "Team: there is no team with the key 'gone'"),
    ]
    assert listed(unknown.text) == []
    too_long = client.get("/console/contacts", params={"owner": "x" * 300})
    assert too_long.status_code == 422  # FastAPI's own check of the query, not a 500

    # The pages of a long list keep the filter.
    for number in range(51):
        body = {"name": f"Client {number}", "owner": "e-ben"}
        ok(client.put(f"/v1/contacts/c-{number:02}", json=body, headers=auth))
    first = client.get("/console/contacts?owner=e-ben").text
    assert len(listed(first)) == 50
    older = re.search(r'href="(/console/contacts\?owner=e-ben&amp;before=\d+)">Older', first)
    assert older is not None
    rest = client.get(html.unescape(older.group(1))).text
    assert listed(rest) == ["c-00"]
    assert 'href="/console/contacts?owner=e-ben">Newest' in rest
